"""kaemdr: the project package (settings, clinics, staff, access rules, audit, Celery)."""

from .celery import app as celery_app

__all__ = ("celery_app",)
