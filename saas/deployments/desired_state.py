"""What is to be deployed: a deployment's fields checked (400 naming the field), where a hosted one
goes, the wishes recorded (each audited), and the Kubernetes objects a deployment is made of
(`manifests`, from infra.kubernetes.gateway with what settings say). Recording a wish neither
plans nor runs anything: the facade (services.py) plans the steps and queues the task."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from django.conf import settings

from core.errors import Conflict, InvalidInput
from infra import aws
from infra.kubernetes.gateway import GatewaySpec, gateway_manifests
from saas.gateways.services import Author, GatewayCluster
from tenants.audit import record_audit

from .connections import check_region, verified_connection
from .models import GatewayDeployment

NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
QUANTITY = re.compile(r"^\d+(\.\d+)?(m|Mi|Gi|Ki)?$")
CHANGEABLE = ("replicas", "max_replicas", "cpu", "memory", "upstream_cidrs")


def checked(fields: dict[str, Any]) -> dict[str, Any]:
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


def _hosted_placement(author: Author, cluster: GatewayCluster, fields: dict[str, Any]) -> None:
    """In our own EKS: its cluster, region and a namespace of the organization's own."""
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


def record_new(author: Author, cluster: GatewayCluster, fields: dict[str, Any]) -> GatewayDeployment:
    """A new deployment of `cluster`'s gateways, checked and recorded (pending)."""
    if fields.pop("hosted", False):
        _hosted_placement(author, cluster, fields)
    check_region(str(fields.get("region", "")))
    fields = checked({"namespace": aws.DEFAULT_NAMESPACE, **fields})
    if not fields.get("eks_cluster"):
        raise InvalidInput.field("eks_cluster", "The EKS cluster to deploy into (or to create).")
    if fields.pop("create_eks_cluster", False):
        if not NAMESPACE.match(fields["eks_cluster"]):
            raise InvalidInput.field(
                "eks_cluster", "A new cluster's name: lowercase letters, digits and '-'."
            )
        fields["created_eks_cluster"] = True
    if not fields.get("hosted"):
        verified_connection()
    live = GatewayDeployment.objects.exclude(status=GatewayDeployment.Status.TORN_DOWN)
    if live.filter(
        eks_cluster=fields["eks_cluster"], region=fields["region"], namespace=fields["namespace"]
    ).exists():
        raise Conflict("A gateway is already deployed in that namespace of that EKS cluster.")
    deployment = GatewayDeployment.objects.create(cluster=cluster, **fields)
    record_audit(author.actor, author.organization, "deployment.started", deployment, after=fields)
    return deployment


def check_changeable(deployment: GatewayDeployment) -> None:
    """A deployment changes only between runs, and never once torn down."""
    if deployment.status in (GatewayDeployment.Status.RUNNING, GatewayDeployment.Status.TORN_DOWN):
        raise Conflict(f"The deployment is {deployment.status}.")


def record_change(author: Author, deployment: GatewayDeployment, fields: dict[str, Any]) -> None:
    """Scale or resize: the new wishes, checked with the current ones, recorded."""
    check_changeable(deployment)
    unknown = set(fields) - set(CHANGEABLE)
    if unknown:
        raise InvalidInput({name: ["Cannot be changed."] for name in sorted(unknown)})
    current = {name: getattr(deployment, name) for name in CHANGEABLE}
    checked({**current, **fields})
    for name, value in fields.items():
        setattr(deployment, name, value)
    deployment.save()
    record_audit(
        author.actor, author.organization, "deployment.changed", deployment, before=current, after=fields
    )


def record_teardown(author: Author, deployment: GatewayDeployment, *, delete_eks_cluster: bool) -> None:
    check_changeable(deployment)
    if delete_eks_cluster and not deployment.created_eks_cluster:
        raise InvalidInput.field(
            "delete_eks_cluster", "Only a cluster Gateway Cloud created is deleted with it."
        )
    deployment.delete_eks_cluster = delete_eks_cluster
    deployment.save(update_fields=["delete_eks_cluster", "updated_at"])
    record_audit(author.actor, author.organization, "deployment.teardown", deployment)


def record_upgrade(author: Author, deployment: GatewayDeployment) -> None:
    """This release's gateway image (SAAS_GATEWAY_IMAGE) wanted instead of the one running."""
    check_changeable(deployment)
    if deployment.image == settings.SAAS_GATEWAY_IMAGE:
        raise Conflict(f"The gateways already run {deployment.image}.")
    record_audit(
        author.actor,
        author.organization,
        "deployment.upgraded",
        deployment,
        before={"image": deployment.image},
        after={"image": settings.SAAS_GATEWAY_IMAGE},
    )


def record_retry(author: Author, deployment: GatewayDeployment) -> None:
    if deployment.status != GatewayDeployment.Status.FAILED:
        raise Conflict("Only a failed deployment can be retried.")
    GatewayDeployment.objects.filter(pk=deployment.pk).update(status=GatewayDeployment.Status.PENDING)
    record_audit(author.actor, author.organization, "deployment.retried", deployment)


# --- the objects a deployment is made of -------------------------------------------------------


def _cidrs(setting: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in setting.split(",") if c.strip())


def gateway_spec(d: GatewayDeployment, token: str = "") -> GatewaySpec:
    return GatewaySpec(
        namespace=d.namespace,
        image=settings.SAAS_GATEWAY_IMAGE,
        control_plane_url=settings.PUBLIC_URL,
        control_plane_cidrs=_cidrs(settings.SAAS_CONTROL_PLANE_CIDRS),
        token=token,
        token_revision=str(d.token_id or ""),
        upstream_cidrs=tuple(d.upstream_cidrs),
        replicas=d.replicas,
        max_replicas=d.max_replicas,
        cpu=d.cpu,
        memory=d.memory,
        labels={"gateway-cloud/cluster": str(d.cluster_id), "gateway-cloud/deployment": str(d.id)},
        hosted=d.hosted,
        cluster_pod_cidrs=_cidrs(settings.SAAS_HOSTED_POD_CIDRS) if d.hosted else (),
    )


def manifests(
    d: GatewayDeployment, kinds: tuple[str, ...] | None = None, token: str = ""
) -> list[dict[str, Any]]:
    """The deployment's objects (of `kinds`, else all), in the order they are applied."""
    return [m for m in gateway_manifests(gateway_spec(d, token)) if kinds is None or m["kind"] in kinds]
