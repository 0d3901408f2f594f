# kaemdr production image: gunicorn web, Celery worker and beat share it (see docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=kaemdr.settings.production \
    PYTHONPATH=/app

# WeasyPrint needs Pango; libpq for psycopg2's runtime.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core libpq5 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Every app folder and the templates (see .dockerignore for what stays out).
COPY . .
RUN pip install --no-cache-dir . \
    && DJANGO_SECRET_KEY=build-only DJANGO_ALLOWED_HOSTS=localhost python manage.py collectstatic --noinput \
    && useradd --system --home /app kaemdr \
    && mkdir -p /app/var && chown -R kaemdr /app/var

USER kaemdr
EXPOSE 8000
CMD ["gunicorn", "kaemdr.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
