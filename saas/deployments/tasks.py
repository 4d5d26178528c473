"""A deployment's operation runs in the background: one task walks the persisted, ordered step
log from the first step not yet succeeded, so a retry (or a worker lost mid-way, the task being
acknowledged late) resumes where it stopped and every step converges."""

from __future__ import annotations

from core.celery import TenantTask, app

from . import services


@app.task(base=TenantTask, name="deployments.run_operation", acks_late=True, max_retries=0)
def run_operation_task(deployment_id: int) -> str:
    return services.run_operation(deployment_id)
