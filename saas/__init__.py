# `celery -A saas` finds the Celery app here; it lives in core, which every app may import.
from core.celery import app as celery_app

__all__ = ["celery_app"]
