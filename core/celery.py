"""The Celery app, and the base for tasks that work inside one organization's schema."""

import logging
import os
from collections.abc import Callable
from smtplib import SMTPException
from typing import Any, Protocol

from celery import Celery, Task
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")

app = Celery("saas")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
logger = logging.getLogger(__name__)


# A mail server that is down or refuses for a moment: try again, backing off.
MAIL_RETRIED = (SMTPException, OSError)


def mail_task(name: str) -> Callable[[Callable[..., None]], Any]:
    """A task that sends one email, retried while the mail server is away."""
    return app.task(
        name=name, autoretry_for=MAIL_RETRIED, max_retries=5, retry_backoff=True, retry_jitter=True
    )


def enqueue_on_commit(what: str, enqueue: Callable[[], object]) -> None:
    """`enqueue` (a task's delay) once the current transaction commits. A broker outage is logged,
    not raised: what the request saved stays saved, and the person can ask again."""
    from django.db import transaction

    def run() -> None:
        try:
            enqueue()
        except Exception:
            logger.exception("Could not enqueue %s", what)

    transaction.on_commit(run)


@worker_process_init.connect
def _freeze_startup_objects(**_: Any) -> None:
    from core.heap import freeze_startup_objects

    freeze_startup_objects()


class _HasSchema(Protocol):
    schema_name: str


class TenantTask(Task):
    """A task that runs in an organization's schema. It carries the schema name (never a model
    instance) and takes ids; enqueue it with `delay_for(organization, *ids)`."""

    abstract = True
    # The schema travels as a keyword the task function does not declare.
    typing = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from django_tenants.utils import schema_context

        schema_name = kwargs.pop("schema_name")
        with schema_context(schema_name):
            return super().__call__(*args, **kwargs)

    def retry(self, *args: Any, **options: Any) -> Any:
        """Celery's retry re-sends the kwargs the task function got, which no longer hold the
        schema (__call__ took it out): it goes back in, so a retried task runs where it ran."""
        from django.db import connection

        kwargs = dict(options.pop("kwargs", None) or self.request.kwargs or {})
        kwargs.setdefault("schema_name", connection.schema_name)  # type: ignore[attr-defined]
        options["kwargs"] = kwargs
        return super().retry(*args, **options)

    def delay_for(self, organization: _HasSchema, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args=args, kwargs={**kwargs, "schema_name": organization.schema_name})
