"""Deploying gateways into a customer's AWS account (EKS), semi-managed.

- `connection_for` / `connect_account`: the organization's ExternalId, the quick-create link of
  the role template, and the role ARN verified (assume-role with the ExternalId, a preflight).
- `start_deployment`, `change_deployment`, `start_teardown`: record what is wanted and queue the
  operation; they never wait for AWS or Kubernetes.
- `run_step`: one step of an operation, idempotent, recorded in the ordered step log (status,
  start, end, message). Retrying a failed operation runs its steps again from the failed one."""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from core import clock
from core.errors import Conflict, InvalidInput
from infra.kubernetes.gateway import APP, FIELD_MANAGER, GatewaySpec, gateway_manifests
from saas.gateways.agents import instance_statuses
from saas.gateways.models import ClusterToken, GatewayCluster
from saas.gateways.services import Author, create_cluster_token, revoke_cluster_token
from tenants.audit import record_audit
from tenants.schemas import current_schema_name

from . import aws
from .kubernetes_api import Cluster, KubernetesError
from .models import AwsConnection, DeploymentStep, GatewayDeployment

logger = logging.getLogger("saas.deployments")
NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
QUANTITY = re.compile(r"^\d+(\.\d+)?(m|Mi|Gi|Ki)?$")


# --- the AWS connection ---------------------------------------------------------------------


def connection_for() -> AwsConnection:
    """The organization's connection (in its schema), with its ExternalId made on first use."""
    connection = AwsConnection.objects.first()
    if connection is None:
        connection = AwsConnection.objects.create(external_id=f"gwc-{secrets.token_urlsafe(24)}")
    return connection


def template_url() -> str:
    return settings.SAAS_AWS_TEMPLATE_URL or f"{settings.PUBLIC_URL}/aws/gateway-role.yaml"


def connect_account(author: Author, role_arn: str) -> AwsConnection:
    """Verify the role (assume it with the ExternalId, check what it may do), then store it."""
    match = aws.ROLE_ARN.match(role_arn)
    if match is None:
        raise InvalidInput.field("role_arn", "An IAM role ARN, like arn:aws:iam::123456789012:role/name.")
    connection = connection_for()
    try:
        session = aws.assume(role_arn, connection.external_id)
        account_id = aws.preflight(session, "us-east-1")
    except aws.AwsError as exc:
        AwsConnection.objects.filter(pk=connection.pk).update(last_error=str(exc))
        raise InvalidInput.field("role_arn", str(exc)) from exc
    before = {"role_arn": connection.role_arn}
    connection.role_arn, connection.account_id = role_arn, account_id
    connection.verified_at, connection.last_error = clock.now(), ""
    connection.save()
    record_audit(
        author.actor,
        author.organization,
        "aws.connected",
        connection,
        before=before,
        after={"role_arn": role_arn},
    )
    return connection


def _verified_connection() -> AwsConnection:
    connection = AwsConnection.objects.first()
    if connection is None or connection.verified_at is None:
        raise Conflict("Connect an AWS account first (POST /aws/connection/ with the role ARN).")
    return connection


def eks_clusters(region: str) -> list[str]:
    _check_region(region)
    connection = _verified_connection()
    try:
        return aws.list_eks_clusters(aws.assume(connection.role_arn, connection.external_id, region), region)
    except aws.AwsError as exc:
        raise Conflict(str(exc)) from exc


# --- wanting a deployment -------------------------------------------------------------------


def _check_region(region: str) -> None:
    if not REGION.match(region or ""):
        raise InvalidInput.field("region", "An AWS region, like us-east-1.")


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    if "namespace" in fields and not NAMESPACE.match(str(fields["namespace"])):
        errors["namespace"] = ["A Kubernetes name: lowercase letters, digits and '-', at most 63."]
    replicas, most = fields.get("replicas", 2), fields.get("max_replicas", 6)
    if not isinstance(replicas, int) or not 1 <= replicas <= 50:
        errors["replicas"] = ["A whole number from 1 to 50."]
    elif not isinstance(most, int) or not replicas <= most <= 100:
        errors["max_replicas"] = ["A whole number from replicas to 100."]
    for name in ("cpu", "memory"):
        if name in fields and not QUANTITY.match(str(fields[name])):
            errors[name] = ["A Kubernetes quantity, like 250m or 256Mi."]
    cidrs = fields.get("upstream_cidrs", [])
    if not isinstance(cidrs, list) or len(cidrs) > 50:
        errors["upstream_cidrs"] = ["A list of at most 50 CIDRs."]
    else:
        for cidr in cidrs:
            try:
                ipaddress.ip_network(str(cidr), strict=False)
            except ValueError:
                errors.setdefault("upstream_cidrs", []).append(f"{cidr!r} is not a CIDR.")
    if errors:
        raise InvalidInput(errors, detail=next(iter(errors.values()))[0])
    return fields


def _run_when_committed(deployment: GatewayDeployment) -> None:
    """Queue the deployment's operation once what asked for it is committed."""
    from .tasks import run_operation_task  # the task module imports this one

    schema, deployment_id = current_schema_name(), deployment.id
    transaction.on_commit(
        lambda: run_operation_task.apply_async(args=(deployment_id,), kwargs={"schema_name": schema})
    )


def start_deployment(author: Author, cluster: GatewayCluster, fields: dict[str, Any]) -> GatewayDeployment:
    if fields.pop("hosted", False):
        # In our own EKS: its cluster, region and a namespace of the organization's own.
        if not settings.SAAS_HOSTED_EKS_CLUSTER:
            raise Conflict("Hosted gateways are not offered here (SAAS_HOSTED_EKS_CLUSTER is not set).")
        if {"region", "eks_cluster", "namespace", "create_eks_cluster"} & {k for k, v in fields.items() if v}:
            raise InvalidInput.field(
                "hosted", "Hosted gateways run in our cluster: no region, cluster or namespace."
            )
        slug = re.sub(r"[^a-z0-9-]", "-", author.organization.slug.lower())[:40].strip("-")
        fields.update(
            hosted=True,
            region=settings.SAAS_HOSTED_EKS_REGION,
            eks_cluster=settings.SAAS_HOSTED_EKS_CLUSTER,
            namespace=f"gw-{slug}-{cluster.id}",
        )
    _check_region(str(fields.get("region", "")))
    fields = _checked({"namespace": aws.DEFAULT_NAMESPACE, **fields})
    if not fields.get("eks_cluster"):
        raise InvalidInput.field("eks_cluster", "The EKS cluster to deploy into (or to create).")
    hosted = bool(fields.get("hosted"))
    if fields.pop("create_eks_cluster", False):
        if not NAMESPACE.match(fields["eks_cluster"]):
            raise InvalidInput.field(
                "eks_cluster", "A new cluster's name: lowercase letters, digits and '-'."
            )
        fields["created_eks_cluster"] = True
    if not hosted:
        _verified_connection()
    live = GatewayDeployment.objects.exclude(status=GatewayDeployment.Status.TORN_DOWN)
    if live.filter(
        eks_cluster=fields["eks_cluster"], region=fields["region"], namespace=fields["namespace"]
    ).exists():
        raise Conflict("A gateway is already deployed in that namespace of that EKS cluster.")
    with transaction.atomic():
        deployment = GatewayDeployment.objects.create(cluster=cluster, **fields)
        _plan(deployment, "deploy")
        record_audit(author.actor, author.organization, "deployment.started", deployment, after=fields)
    _run_when_committed(deployment)
    return deployment


def _check_changeable(deployment: GatewayDeployment) -> None:
    """A deployment changes only between runs, and never once torn down."""
    if deployment.status in (GatewayDeployment.Status.RUNNING, GatewayDeployment.Status.TORN_DOWN):
        raise Conflict(f"The deployment is {deployment.status}.")


def change_deployment(
    author: Author, deployment: GatewayDeployment, fields: dict[str, Any]
) -> GatewayDeployment:
    """Scale or resize: the same steps again with the new wishes (each apply converges)."""
    _check_changeable(deployment)
    allowed = {"replicas", "max_replicas", "cpu", "memory", "upstream_cidrs"}
    unknown = set(fields) - allowed
    if unknown:
        raise InvalidInput({name: ["Cannot be changed."] for name in sorted(unknown)})
    current = {name: getattr(deployment, name) for name in allowed}
    _checked({**current, **fields})
    with transaction.atomic():
        for name, value in fields.items():
            setattr(deployment, name, value)
        deployment.save()
        _plan(deployment, "deploy")
        record_audit(
            author.actor, author.organization, "deployment.changed", deployment, before=current, after=fields
        )
    _run_when_committed(deployment)
    return deployment


def start_teardown(
    author: Author, deployment: GatewayDeployment, *, delete_eks_cluster: bool = False
) -> GatewayDeployment:
    _check_changeable(deployment)
    if delete_eks_cluster and not deployment.created_eks_cluster:
        raise InvalidInput.field(
            "delete_eks_cluster", "Only a cluster Gateway Cloud created is deleted with it."
        )
    with transaction.atomic():
        deployment.delete_eks_cluster = delete_eks_cluster
        deployment.save(update_fields=["delete_eks_cluster", "updated_at"])
        _plan(deployment, "teardown")
        record_audit(author.actor, author.organization, "deployment.teardown", deployment)
    _run_when_committed(deployment)
    return deployment


def upgrade_deployment(author: Author, deployment: GatewayDeployment) -> GatewayDeployment:
    """The same steps again with this release's gateway image (SAAS_GATEWAY_IMAGE): a rolling
    update, the pods replaced a few at a time as the Deployment's strategy says."""
    _check_changeable(deployment)
    if deployment.image == settings.SAAS_GATEWAY_IMAGE:
        raise Conflict(f"The gateways already run {deployment.image}.")
    with transaction.atomic():
        _plan(deployment, "deploy")
        record_audit(
            author.actor,
            author.organization,
            "deployment.upgraded",
            deployment,
            before={"image": deployment.image},
            after={"image": settings.SAAS_GATEWAY_IMAGE},
        )
    _run_when_committed(deployment)
    return deployment


def retry(author: Author, deployment: GatewayDeployment) -> GatewayDeployment:
    """Run the failed operation again, from its failed step."""
    if deployment.status != GatewayDeployment.Status.FAILED:
        raise Conflict("Only a failed deployment can be retried.")
    GatewayDeployment.objects.filter(pk=deployment.pk).update(status=GatewayDeployment.Status.PENDING)
    record_audit(author.actor, author.organization, "deployment.retried", deployment)
    _run_when_committed(deployment)
    deployment.refresh_from_db()
    return deployment


# --- the steps --------------------------------------------------------------------------------


@dataclass
class Context:
    """What earlier steps of one run found; rebuilt when a run resumes (nothing is persisted but
    the endpoint and CA, which are not secret)."""

    deployment: GatewayDeployment
    session: Any = None
    kube: Cluster | None = None


def _session(ctx: Context) -> Any:
    if ctx.session is None and ctx.deployment.hosted:
        ctx.session = aws.own_session(ctx.deployment.region)
    if ctx.session is None:
        connection = _verified_connection()
        ctx.session = aws.assume(connection.role_arn, connection.external_id, ctx.deployment.region)
    return ctx.session


def _kube(ctx: Context) -> Cluster:
    if ctx.kube is None:
        d = ctx.deployment
        if not d.eks_endpoint:
            _describe(ctx)
        token = aws.eks_bearer_token(_session(ctx), d.region, d.eks_cluster)
        ctx.kube = Cluster(settings.SAAS_EKS_ENDPOINT_OVERRIDE or d.eks_endpoint, token, d.eks_ca_data)
    return ctx.kube


def _spec(d: GatewayDeployment, token: str = "") -> GatewaySpec:
    return GatewaySpec(
        namespace=d.namespace,
        image=settings.SAAS_GATEWAY_IMAGE,
        control_plane_url=settings.PUBLIC_URL,
        control_plane_cidrs=tuple(
            c.strip() for c in settings.SAAS_CONTROL_PLANE_CIDRS.split(",") if c.strip()
        ),
        token=token,
        upstream_cidrs=tuple(d.upstream_cidrs),
        replicas=d.replicas,
        max_replicas=d.max_replicas,
        cpu=d.cpu,
        memory=d.memory,
        labels={"gateway-cloud/cluster": str(d.cluster_id), "gateway-cloud/deployment": str(d.id)},
        hosted=d.hosted,
        cluster_pod_cidrs=tuple(c.strip() for c in settings.SAAS_HOSTED_POD_CIDRS.split(",") if c.strip())
        if d.hosted
        else (),
    )


def _manifests(d: GatewayDeployment, kinds: tuple[str, ...], token: str = "") -> list[dict[str, Any]]:
    return [m for m in gateway_manifests(_spec(d, token)) if m["kind"] in kinds]


def _assume(ctx: Context) -> str:
    session = _session(ctx)
    account = aws.preflight(session, ctx.deployment.region)
    return (
        f"our own account {account} (hosted)"
        if ctx.deployment.hosted
        else f"assumed the role in account {account}"
    )


def _describe(ctx: Context) -> str:
    d = ctx.deployment
    cluster = aws.describe_eks_cluster(_session(ctx), d.region, d.eks_cluster)
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
        for manifest in _manifests(ctx.deployment, kinds):
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
    author = _system_author()
    previous = (
        ClusterToken.objects.filter(pk=d.token_id, revoked_at__isnull=True).first() if d.token_id else None
    )
    token, secret = create_cluster_token(author, d.cluster, name=f"eks-{d.eks_cluster}-{d.namespace}"[:100])
    kube = _kube(ctx)
    for manifest in _manifests(d, ("ServiceAccount", "Secret"), secret):
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
    import time

    from tenants.models import Organization

    d = ctx.deployment
    organization = Organization.objects.get(schema_name=current_schema_name())
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
    import time

    deadline = time.monotonic() + settings.SAAS_DEPLOY_WAIT_S
    while (status := ensure()) != "ACTIVE":
        DeploymentStep.objects.filter(deployment=ctx.deployment, name=step).update(message=f"{what} {status}")
        if status in failed or time.monotonic() > deadline:
            raise aws.AwsError(f"{what} is {status}.")
        time.sleep(15)
    return f"{what} is ACTIVE"


def _create_cluster(ctx: Context) -> str:
    d, role = ctx.deployment, _verified_connection().role_arn
    return _until_active(
        ctx,
        "create_eks_cluster",
        f"EKS cluster {d.eks_cluster}",
        lambda: aws.create_eks_cluster(_session(ctx), d.region, d.eks_cluster, role),
        {"FAILED"},
    )


def _create_nodes(ctx: Context) -> str:
    d, role = ctx.deployment, _verified_connection().role_arn
    return _until_active(
        ctx,
        "create_node_group",
        f"node group {aws.NODE_GROUP} of {d.eks_cluster}",
        lambda: aws.create_node_group(_session(ctx), d.region, d.eks_cluster, role, d.replicas),
        {"CREATE_FAILED", "DEGRADED"},
    )


def _delete_cluster(ctx: Context) -> str:
    d = ctx.deployment
    return "deleted the EKS " + aws.delete_eks_cluster(_session(ctx), d.region, d.eks_cluster)


def _delete_all(ctx: Context) -> str:
    d = ctx.deployment
    kube = _kube(ctx)
    removed = []
    for manifest in reversed(gateway_manifests(_spec(d))):
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
        revoke_cluster_token(_system_author(), token)
        return "revoked the agent token"
    return "no token to revoke"


CLUSTER_CREATION = [("create_eks_cluster", _create_cluster), ("create_node_group", _create_nodes)]
CLUSTER_DELETION = [("delete_eks_cluster", _delete_cluster)]
OPERATIONS: dict[str, list[tuple[str, Callable[[Context], str]]]] = {
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


def _system_author() -> Author:
    from tenants.audit import Actor
    from tenants.models import Organization

    return Author(
        actor=Actor(user=None), organization=Organization.objects.get(schema_name=current_schema_name())
    )


def steps_for(deployment: GatewayDeployment, operation: str) -> list[tuple[str, Callable[[Context], str]]]:
    steps = list(OPERATIONS[operation])
    if operation == "deploy" and deployment.created_eks_cluster:
        steps[1:1] = CLUSTER_CREATION  # right after assuming the role
    if operation == "teardown" and deployment.delete_eks_cluster:
        steps += CLUSTER_DELETION
    return steps


def _plan(deployment: GatewayDeployment, operation: str) -> None:
    """A fresh, ordered step log for the operation."""
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
            now = clock.now()
            DeploymentStep.objects.filter(pk=step.pk).update(
                status=DeploymentStep.Status.FAILED, finished_at=now, message=str(exc)
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
