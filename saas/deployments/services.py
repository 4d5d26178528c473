"""Deploying gateways into a customer's AWS account (EKS), semi-managed: what views and tasks
call. A request records what is wanted and queues a task, once committed; it never waits on AWS
or Kubernetes. The work is in:

- `connections`: the organization's AWS connection (ExternalId, role template, the role ARN
  verified) and the EKS clusters it sees;
- `desired_state`: what a deployment is to be (its fields checked, its Kubernetes objects);
- `steps`: the step engine, each operation an ordered, resumable step log."""

from __future__ import annotations

from typing import Any

from celery import Task
from django.db import transaction

from saas.gateways.services import Author, GatewayCluster
from tenants.schemas import current_schema_name

from . import connections, desired_state, steps
from .connections import connection_for, eks_listing, quick_create_url, role_template, template_url
from .models import AwsConnection, EksClusterListing, GatewayDeployment

__all__ = [
    "change_deployment",
    "connect_account",
    "connection_for",
    "eks_listing",
    "list_eks_clusters",
    "quick_create_url",
    "request_eks_listing",
    "retry",
    "role_template",
    "run_operation",
    "start_deployment",
    "start_teardown",
    "template_url",
    "upgrade_deployment",
    "verify_connection",
]


def _queue(task_name: str, *args: Any) -> None:
    """Queue the task once what asked for it is committed, in this organization's schema."""
    from . import tasks  # the task module imports this one

    task: Task = getattr(tasks, task_name)
    schema = current_schema_name()
    transaction.on_commit(lambda: task.apply_async(args=args, kwargs={"schema_name": schema}))


# --- the AWS connection -----------------------------------------------------------------------


def connect_account(author: Author, role_arn: str) -> AwsConnection:
    """The role ARN to verify, recorded (status `verifying`); a task assumes it and checks it."""
    with transaction.atomic():
        connection = connections.request_verification(author, role_arn)
    user_id = author.actor.user.pk if author.actor.user else None
    _queue("verify_connection_task", connection.pk, role_arn, user_id)
    return connection


def verify_connection(
    connection_id: int, role_arn: str, user_id: int | None, *, attempt: int = 1, last_attempt: bool = True
) -> str:
    return connections.verify(connection_id, role_arn, user_id, attempt=attempt, last_attempt=last_attempt)


def request_eks_listing(author: Author, region: str) -> EksClusterListing:
    """The clusters of `region` to be listed (status `listing`); a task lists them."""
    with transaction.atomic():
        listing = connections.request_eks_listing(author, region)
    _queue("list_eks_clusters_task", listing.pk)
    return listing


def list_eks_clusters(listing_id: int, *, attempt: int = 1, last_attempt: bool = True) -> str:
    return connections.list_eks_clusters(listing_id, attempt=attempt, last_attempt=last_attempt)


# --- deployments: what is wanted, planned, then run by a task ----------------------------------


def start_deployment(author: Author, cluster: GatewayCluster, fields: dict[str, Any]) -> GatewayDeployment:
    with transaction.atomic():
        deployment = desired_state.record_new(author, cluster, fields)
        steps.plan(deployment, "deploy")
    _queue("run_operation_task", deployment.pk)
    return deployment


def change_deployment(
    author: Author, deployment: GatewayDeployment, fields: dict[str, Any]
) -> GatewayDeployment:
    """Scale or resize: the same steps again with the new wishes (each apply converges)."""
    with transaction.atomic():
        desired_state.record_change(author, deployment, fields)
        steps.plan(deployment, "deploy")
    _queue("run_operation_task", deployment.pk)
    return deployment


def start_teardown(
    author: Author, deployment: GatewayDeployment, *, delete_eks_cluster: bool = False
) -> GatewayDeployment:
    with transaction.atomic():
        desired_state.record_teardown(author, deployment, delete_eks_cluster=delete_eks_cluster)
        steps.plan(deployment, "teardown")
    _queue("run_operation_task", deployment.pk)
    return deployment


def upgrade_deployment(author: Author, deployment: GatewayDeployment) -> GatewayDeployment:
    """The same steps again with this release's gateway image (SAAS_GATEWAY_IMAGE): a rolling
    update, the pods replaced a few at a time as the Deployment's strategy says."""
    with transaction.atomic():
        desired_state.record_upgrade(author, deployment)
        steps.plan(deployment, "deploy")
    _queue("run_operation_task", deployment.pk)
    return deployment


def retry(author: Author, deployment: GatewayDeployment) -> GatewayDeployment:
    """Run the failed operation again, from its failed step."""
    with transaction.atomic():
        desired_state.record_retry(author, deployment)
    _queue("run_operation_task", deployment.pk)
    deployment.refresh_from_db()
    return deployment


def run_operation(deployment_id: int) -> str:
    return steps.run_operation(deployment_id)
