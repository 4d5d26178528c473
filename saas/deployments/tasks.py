"""A deployment's operation runs in the background: one task walks the persisted, ordered step
log from the first step not yet succeeded, so a retry (or a worker lost mid-way, the task being
acknowledged late) resumes where it stopped and every step converges."""

from __future__ import annotations

from saas.celery import TenantTask, app

from . import services


@app.task(base=TenantTask, name="deployments.run_operation", acks_late=True, max_retries=0)
def run_operation_task(deployment_id: int) -> str:
    return services.run_operation(deployment_id)


class _Queue:
    """`run_operation.delay(schema, id)` for the services, which know the schema, not the org."""

    @staticmethod
    def delay(schema_name: str, deployment_id: int) -> None:
        run_operation_task.apply_async(args=(deployment_id,), kwargs={"schema_name": schema_name})


run_operation = _Queue()
