"""The background half of deployments: every call to AWS or Kubernetes runs here, never in a
request. Each task takes ids (and the organization's schema, TenantTask) and writes its progress
where the API reads it.

A deployment's operation: one task walks the persisted, ordered step log from the first step not
yet succeeded, so a retry (or a worker lost mid-way, the task being acknowledged late) resumes
where it stopped and every step converges; a failed step waits for the user's retry.

Verifying a connection and listing EKS clusters: AWS failing transiently (the network, throttling,
its own errors) is tried again, a bounded number of times with a growing delay; a refusal, or
the last attempt's failure, is stored as the outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Task

from core.celery import TenantTask, app
from infra.aws import AwsError

from . import services

AWS_ATTEMPTS = 4  # the first, and 3 retries
RETRY_DELAY_S = 5.0  # then 10, 20


def _with_retries(task: Task, work: Callable[..., str], *args: Any) -> str:
    retries = task.request.retries
    try:
        return work(*args, attempt=retries + 1, last_attempt=retries + 1 >= AWS_ATTEMPTS)
    except AwsError as exc:  # transient, and attempts remain (`work` stores anything else)
        raise task.retry(exc=exc, countdown=RETRY_DELAY_S * 2**retries, max_retries=AWS_ATTEMPTS - 1) from exc


@app.task(base=TenantTask, name="deployments.run_operation", acks_late=True, max_retries=0)
def run_operation_task(deployment_id: int) -> str:
    return services.run_operation(deployment_id)


@app.task(base=TenantTask, bind=True, name="deployments.verify_connection", acks_late=True)
def verify_connection_task(self: Task, connection_id: int, role_arn: str, user_id: int | None = None) -> str:
    return _with_retries(self, services.verify_connection, connection_id, role_arn, user_id)


@app.task(base=TenantTask, bind=True, name="deployments.list_eks_clusters", acks_late=True)
def list_eks_clusters_task(self: Task, listing_id: int) -> str:
    return _with_retries(self, services.list_eks_clusters, listing_id)
