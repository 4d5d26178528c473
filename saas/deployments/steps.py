"""The step engine: an operation (deploy, teardown) is an ordered log of steps (`plan`), run in a
task (`run_operation`), each step idempotent and recorded (status, start, end, attempts,
message). A run resumes at the first step not yet succeeded, so retrying a failed operation (or
a worker lost mid-way) converges."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from core import clock
from infra import aws
from infra.kubernetes.api import Cluster, KubernetesError
from infra.kubernetes.gateway import APP, FIELD_MANAGER
from saas.gateways.services import ClusterToken, create_cluster_token, instance_statuses, revoke_cluster_token

from .connections import session_for, task_author, verified_connection
from .desired_state import manifests
from .models import DeploymentStep, GatewayDeployment

logger = logging.getLogger("saas.deployments")


@dataclass
class Context:
    """What earlier steps of one run found; rebuilt when a run resumes (nothing is persisted but
    the endpoint and CA, which are not secret)."""

    deployment: GatewayDeployment
    session: aws.Session | None = None
    kube: Cluster | None = None


def _session(ctx: Context) -> aws.Session:
    if ctx.session is None:
        ctx.session = session_for(ctx.deployment.region, hosted=ctx.deployment.hosted)
    return ctx.session


def _kube(ctx: Context) -> Cluster:
    if ctx.kube is None:
        d = ctx.deployment
        if not d.eks_endpoint:
            _describe(ctx)
        token = aws.eks_bearer_token(_session(ctx), d.eks_cluster)
        ctx.kube = Cluster(settings.SAAS_EKS_ENDPOINT_OVERRIDE or d.eks_endpoint, token, d.eks_ca_data)
    return ctx.kube


def _assume(ctx: Context) -> str:
    account = aws.preflight(_session(ctx))
    return (
        f"our own account {account} (hosted)"
        if ctx.deployment.hosted
        else f"assumed the role in account {account}"
    )


def _describe(ctx: Context) -> str:
    d = ctx.deployment
    cluster = aws.describe_eks_cluster(_session(ctx), d.eks_cluster)
    GatewayDeployment.objects.filter(pk=d.pk).update(
        eks_endpoint=cluster.endpoint, eks_ca_data=cluster.ca_data
    )
    d.eks_endpoint, d.eks_ca_data = cluster.endpoint, cluster.ca_data
    return f"{cluster.name} is {cluster.status} at {cluster.endpoint}"


def _authenticate(ctx: Context) -> str:
    return f"authenticated to Kubernetes {_kube(ctx).version()} with an STS-presigned token"


def _apply(*kinds: str) -> Callable[[Context], str]:
    def step(ctx: Context) -> str:
        kube = _kube(ctx)
        names = []
        for manifest in manifests(ctx.deployment, kinds):
            try:
                kube.apply(manifest)
            except KubernetesError as exc:
                # A namespace-scoped access entry may not create namespaces: one made by the
                # customer will do.
                if (
                    manifest["kind"] != "Namespace"
                    or exc.status != 403
                    or not kube.get("v1", "Namespace", manifest["metadata"]["name"])
                ):
                    raise
            names.append(f"{manifest['kind']}/{manifest['metadata']['name']}")
        return "applied " + ", ".join(names)

    return step


def _apply_gateways(ctx: Context) -> str:
    """The gateways' Deployment, and the image it now runs (what an upgrade compares with)."""
    applied = _apply("Deployment")(ctx)
    ctx.deployment.image = settings.SAAS_GATEWAY_IMAGE
    GatewayDeployment.objects.filter(pk=ctx.deployment.pk).update(image=ctx.deployment.image)
    return applied


def _token(ctx: Context) -> str:
    """The Secret holding the agent token: a new token each time this step runs (its plaintext
    exists only now), the previous one revoked once the new one is stored in the cluster."""
    d = ctx.deployment
    author = task_author()
    previous = (
        ClusterToken.objects.filter(pk=d.token_id, revoked_at__isnull=True).first() if d.token_id else None
    )
    token, secret = create_cluster_token(author, d.cluster, name=f"eks-{d.eks_cluster}-{d.namespace}"[:100])
    kube = _kube(ctx)
    for manifest in manifests(d, ("ServiceAccount", "Secret"), secret):
        kube.apply(manifest)
    GatewayDeployment.objects.filter(pk=d.pk).update(token_id=token.id)
    d.token_id = token.id
    if previous is not None:
        revoke_cluster_token(author, previous)
    return "stored a new agent token in Secret gateway-token"


def _rollout(ctx: Context) -> str:
    return _kube(ctx).wait_for_rollout(ctx.deployment.namespace, APP, settings.SAAS_DEPLOY_WAIT_S)


def _load_balancer(ctx: Context) -> str:
    d = ctx.deployment
    hostname = _kube(ctx).load_balancer_hostname(d.namespace, APP, settings.SAAS_DEPLOY_WAIT_S)
    GatewayDeployment.objects.filter(pk=d.pk).update(load_balancer_hostname=hostname)
    return f"load balancer {hostname}"


def _instances_online(ctx: Context) -> str:
    d = ctx.deployment
    organization = task_author().organization
    deadline = time.monotonic() + settings.SAAS_DEPLOY_WAIT_S
    while True:
        online = [
            s
            for s in instance_statuses(organization.schema_name, d.cluster_id, organization.id)
            if s["status"] == "online"
        ]
        if online:
            return f"{len(online)} instance(s) online"
        if time.monotonic() > deadline:
            raise KubernetesError(
                f"No gateway instance came online within {settings.SAAS_DEPLOY_WAIT_S:.0f} s."
            )
        time.sleep(2)


def _until_active(ctx: Context, step: str, what: str, ensure: Callable[[], str], failed: set[str]) -> str:
    """Create-or-describe with `ensure` until ACTIVE (EKS takes minutes), the status in the
    step's message meanwhile."""
    deadline = time.monotonic() + settings.SAAS_DEPLOY_WAIT_S
    while (status := ensure()) != "ACTIVE":
        DeploymentStep.objects.filter(deployment=ctx.deployment, name=step).update(message=f"{what} {status}")
        if status in failed or time.monotonic() > deadline:
            raise aws.AwsError(f"{what} is {status}.")
        time.sleep(15)
    return f"{what} is ACTIVE"


def _create_cluster(ctx: Context) -> str:
    d, role = ctx.deployment, verified_connection().role_arn
    return _until_active(
        ctx,
        "create_eks_cluster",
        f"EKS cluster {d.eks_cluster}",
        lambda: aws.create_eks_cluster(_session(ctx), d.eks_cluster, role),
        {"FAILED"},
    )


def _create_nodes(ctx: Context) -> str:
    d, role = ctx.deployment, verified_connection().role_arn
    return _until_active(
        ctx,
        "create_node_group",
        f"node group {aws.NODE_GROUP} of {d.eks_cluster}",
        lambda: aws.create_node_group(_session(ctx), d.eks_cluster, role, d.replicas),
        {"CREATE_FAILED", "DEGRADED"},
    )


def _delete_cluster(ctx: Context) -> str:
    return "deleted the EKS " + aws.delete_eks_cluster(_session(ctx), ctx.deployment.eks_cluster)


def _delete_all(ctx: Context) -> str:
    kube = _kube(ctx)
    removed = []
    for manifest in reversed(manifests(ctx.deployment)):
        meta = manifest["metadata"]
        if manifest["kind"] == "Namespace":
            existing = kube.get("v1", "Namespace", meta["name"])
            ours = (
                existing
                and existing.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/managed-by")
                == FIELD_MANAGER
            )
            if not ours:
                continue  # the customer's own namespace stays
        if kube.delete(manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace")):
            removed.append(f"{manifest['kind']}/{meta['name']}")
    return "deleted " + (", ".join(removed) or "nothing (already gone)")


def _revoke_token(ctx: Context) -> str:
    d = ctx.deployment
    token = (
        ClusterToken.objects.filter(pk=d.token_id, revoked_at__isnull=True).first() if d.token_id else None
    )
    if token is not None:
        revoke_cluster_token(task_author(), token)
        return "revoked the agent token"
    return "no token to revoke"


Step = tuple[str, Callable[[Context], str]]
CLUSTER_CREATION: list[Step] = [("create_eks_cluster", _create_cluster), ("create_node_group", _create_nodes)]
CLUSTER_DELETION: list[Step] = [("delete_eks_cluster", _delete_cluster)]
OPERATIONS: dict[str, list[Step]] = {
    "deploy": [
        ("assume_role", _assume),
        ("describe_eks_cluster", _describe),
        ("authenticate", _authenticate),
        ("apply_namespace", _apply("Namespace")),
        ("apply_network_policies", _apply("NetworkPolicy")),
        ("apply_agent_token", _token),
        ("apply_deployment", _apply_gateways),
        ("apply_service", _apply("Service")),
        ("apply_disruption_budget", _apply("PodDisruptionBudget")),
        ("apply_autoscaler", _apply("HorizontalPodAutoscaler")),
        ("wait_for_rollout", _rollout),
        ("load_balancer", _load_balancer),
        ("instances_online", _instances_online),
    ],
    "teardown": [
        ("assume_role", _assume),
        ("describe_eks_cluster", _describe),
        ("authenticate", _authenticate),
        ("delete_objects", _delete_all),
        ("revoke_agent_token", _revoke_token),
    ],
}


def steps_for(deployment: GatewayDeployment, operation: str) -> list[Step]:
    steps = list(OPERATIONS[operation])
    if operation == "deploy" and deployment.created_eks_cluster:
        steps[1:1] = CLUSTER_CREATION  # right after assuming the role
    if operation == "teardown" and deployment.delete_eks_cluster:
        steps += CLUSTER_DELETION
    return steps


def plan(deployment: GatewayDeployment, operation: str) -> None:
    """A fresh, ordered step log for the operation, the deployment pending."""
    DeploymentStep.objects.filter(deployment=deployment).delete()
    DeploymentStep.objects.bulk_create(
        DeploymentStep(deployment=deployment, operation=operation, position=i, name=name)
        for i, (name, _) in enumerate(steps_for(deployment, operation), start=1)
    )
    deployment.operation, deployment.status, deployment.message = (
        operation,
        GatewayDeployment.Status.PENDING,
        "",
    )
    deployment.save(update_fields=["operation", "status", "message", "updated_at"])


def run_operation(deployment_id: int) -> str:
    """Run the operation's steps that have not succeeded, in order; stop at the first failure
    (its message in the step and the deployment). Returns the final status."""
    deployment = GatewayDeployment.objects.get(pk=deployment_id)
    ctx = Context(deployment)
    steps = dict(steps_for(deployment, deployment.operation))
    GatewayDeployment.objects.filter(pk=deployment.pk).update(status=GatewayDeployment.Status.RUNNING)
    for step in DeploymentStep.objects.filter(deployment=deployment).order_by("position"):
        if step.status == DeploymentStep.Status.SUCCEEDED:
            continue
        DeploymentStep.objects.filter(pk=step.pk).update(
            status=DeploymentStep.Status.RUNNING,
            started_at=clock.now(),
            finished_at=None,
            attempts=step.attempts + 1,
            message="",
        )
        try:
            message = steps[step.name](ctx)
        except Exception as exc:  # any failure is the step's: recorded, so the operation can be retried
            if not isinstance(exc, aws.AwsError | KubernetesError):
                logger.exception("deployment %s: step %s failed unexpectedly", deployment.id, step.name)
            DeploymentStep.objects.filter(pk=step.pk).update(
                status=DeploymentStep.Status.FAILED, finished_at=clock.now(), message=str(exc)
            )
            GatewayDeployment.objects.filter(pk=deployment.pk).update(
                status=GatewayDeployment.Status.FAILED, message=f"{step.name}: {exc}"
            )
            return GatewayDeployment.Status.FAILED
        DeploymentStep.objects.filter(pk=step.pk).update(
            status=DeploymentStep.Status.SUCCEEDED, finished_at=clock.now(), message=message[:2000]
        )
    final = (
        GatewayDeployment.Status.TORN_DOWN
        if deployment.operation == "teardown"
        else GatewayDeployment.Status.SUCCEEDED
    )
    GatewayDeployment.objects.filter(pk=deployment.pk).update(status=final, message="")
    return final
