"""The embedded default that `make run` serves: debug pages, console email."""

from __future__ import annotations

from .base import *

DEBUG = env.bool("DJANGO_DEBUG", default=True)
