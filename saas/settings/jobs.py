"""Celery: broker and results in Redis."""

from .cache import REDIS_URL
from .env import env_bool

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "purge-stale-invitations": {"task": "tenants.purge_stale_invitations", "schedule": 86400.0},
    # Quotas reach the gateways within a minute: checked every 30 s, enforced by the next snapshot.
    "check-quotas": {"task": "billing.check_quotas", "schedule": 30.0},
    # Every hour's calls to Stripe's meter; a run reports the hour just ended (and corrections).
    "report-usage-to-stripe": {"task": "billing.report_usage_to_stripe", "schedule": 600.0},
    # Local invoices for the month that ended (no Stripe): made once, checked every hour.
    "issue-local-invoices": {"task": "billing.issue_local_invoices", "schedule": 3600.0},
}
