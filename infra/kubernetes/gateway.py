"""The Kubernetes objects of one gateway, for the AWS deployer (server-side apply into a customer's
EKS, or our own for hosted tenants). `helm/gateway`, the chart customers install, describes the
same objects: tests/unit/test_gateway_chart_parity.py renders it, as release "gateway" with the
values equivalent to a GatewaySpec, and compares the two object by object. A change here needs
the same change there (and the other way round).

Isolation is by NetworkPolicy: everything in the namespace is denied, then the gateway may take
traffic on its ports from anywhere, and reach only DNS, the control plane and the upstream CIDRs
listed. Hosted (tenants' gateways in our own cluster): "anywhere" excludes the cluster's pod
CIDRs, so no other tenant's namespace can reach a gateway, nor a gateway another namespace. The
metrics port takes no traffic (the probes still reach it: network plugins, the AWS VPC CNI's
included, let the node's kubelet through)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

FIELD_MANAGER = "gateway-saas"
HTTP_PORT, HTTPS_PORT, METRICS_PORT = 8080, 8443, 9101
APP = "gateway"  # the release name, in the chart's terms: every object is named after it
TOKEN_SECRET, TOKEN_KEY = f"{APP}-token", "token"
TRAFFIC_POLICY, DEFAULT_DENY = f"{APP}-traffic", "default-deny"
ANYWHERE = "0.0.0.0/0"
DNS_NAMESPACE = "kube-system"
DATA_DIR = "/var/lib/gateway-agent"  # images/gateway/Containerfile's GATEWAY_DATA_DIR
USER = 10001  # and its user
# gateway-agent's settings (gateway_agent/cli.py), as helm/gateway's values.yaml has them.
AGENT_BIND, HEARTBEAT_S, POLL_WAIT_S, USAGE_SPOOL_MB, USAGE_SPOOL_HOURS = "*", 10, 30, 512, 168
DATA_DIR_SIZE, TMP_DIR_SIZE = "1Gi", "64Mi"  # the usage spool (512 MB) fits in the data folder
TERMINATION_GRACE_S = 60
CPU_TARGET = 70  # the autoscaler's, in % of the CPU requested
NLB_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-type": "external",
    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
}


@dataclass(frozen=True)
class GatewaySpec:
    namespace: str
    image: str  # repository:tag
    control_plane_url: str
    control_plane_cidrs: tuple[str, ...]  # empty: anywhere
    token: str
    upstream_cidrs: tuple[str, ...] = ()
    replicas: int = 2  # the autoscaler's minimum
    max_replicas: int = 6
    cpu: str = "250m"
    memory: str = "256Mi"
    cpu_limit: str = ""  # empty: none (a CPU limit throttles a proxy's latency)
    memory_limit: str = "512Mi"
    hosted: bool = False
    cluster_pod_cidrs: tuple[str, ...] = ()  # hosted: where other tenants' pods live
    labels: dict[str, str] = field(default_factory=dict)  # more labels on every object
    # What identifies the token in the Secret when its value is not at hand (the deployer applies
    # the Deployment in a later step than the Secret): a new one rolls the pods all the same.
    token_revision: str = ""


def _selector() -> dict[str, str]:
    return {"app.kubernetes.io/name": APP, "app.kubernetes.io/instance": APP}


def image_version(image: str) -> str:
    """The image's tag (the app.kubernetes.io/version label), or "" without one."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    tag = name.rpartition(":")[2] if ":" in name else ""
    return tag[:63].removesuffix("-")


def _meta(spec: GatewaySpec, name: str, namespaced: bool = True) -> dict[str, Any]:
    labels = {
        **spec.labels,
        **_selector(),
        "app.kubernetes.io/managed-by": FIELD_MANAGER,
        "app.kubernetes.io/component": APP,
    }
    if version := image_version(spec.image):
        labels["app.kubernetes.io/version"] = version
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if namespaced:
        meta["namespace"] = spec.namespace
    return meta


def _excluded(spec: GatewaySpec) -> tuple[str, ...]:
    """What "anywhere" excludes."""
    return spec.cluster_pod_cidrs if spec.hosted else ()


def _peer(cidr: str, spec: GatewaySpec) -> dict[str, Any]:
    block: dict[str, Any] = {"cidr": cidr}
    if cidr == ANYWHERE and _excluded(spec):
        block["except"] = list(_excluded(spec))
    return {"ipBlock": block}


def control_plane_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (80 if parts.scheme == "http" else 443)


def network_policies(spec: GatewaySpec) -> list[dict[str, Any]]:
    gateway_ports: dict[str, Any] = {
        "ports": [{"protocol": "TCP", "port": HTTP_PORT}, {"protocol": "TCP", "port": HTTPS_PORT}]
    }
    if _excluded(spec):  # otherwise from anywhere: no `from` (IPv6 and the cluster's pods too)
        gateway_ports["from"] = [_peer(ANYWHERE, spec)]
    egress: list[dict[str, Any]] = [
        {
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": DNS_NAMESPACE}}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        },
        {
            "to": [_peer(cidr, spec) for cidr in spec.control_plane_cidrs or (ANYWHERE,)],
            "ports": [{"protocol": "TCP", "port": control_plane_port(spec.control_plane_url)}],
        },
        *({"to": [_peer(cidr, spec)]} for cidr in spec.upstream_cidrs),
    ]
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta(spec, DEFAULT_DENY),
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta(spec, TRAFFIC_POLICY),
            "spec": {
                "podSelector": {"matchLabels": _selector()},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [gateway_ports],
                "egress": egress,
            },
        },
    ]


def _deployment(spec: GatewaySpec) -> dict[str, Any]:
    check = {"httpGet": {"path": "/metrics", "port": "metrics"}}  # HAProxy's exporter
    limits = {"memory": spec.memory_limit, **({"cpu": spec.cpu_limit} if spec.cpu_limit else {})}
    container = {
        "name": APP,
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["run"],
        "env": [
            {"name": "GATEWAY_CONTROL_PLANE", "value": spec.control_plane_url},
            {
                "name": "GATEWAY_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": TOKEN_SECRET, "key": TOKEN_KEY}},
            },
            {"name": "GATEWAY_DATA_DIR", "value": DATA_DIR},
            {"name": "GATEWAY_HTTP_PORT", "value": str(HTTP_PORT)},
            {"name": "GATEWAY_HTTPS_PORT", "value": str(HTTPS_PORT)},
            {"name": "GATEWAY_METRICS_PORT", "value": str(METRICS_PORT)},
            {"name": "GATEWAY_BIND", "value": AGENT_BIND},
            {"name": "GATEWAY_HEARTBEAT_S", "value": str(HEARTBEAT_S)},
            {"name": "GATEWAY_POLL_WAIT_S", "value": str(POLL_WAIT_S)},
            {"name": "GATEWAY_USAGE_SPOOL_MB", "value": str(USAGE_SPOOL_MB)},
            {"name": "GATEWAY_USAGE_SPOOL_HOURS", "value": str(USAGE_SPOOL_HOURS)},
        ],
        "ports": [
            {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
            {"name": "https", "containerPort": HTTPS_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        # HAProxy starts once the agent has a configuration (the last good one on disk, or the
        # first from the control plane): up to 60 x 5 s.
        "startupProbe": {**check, "periodSeconds": 5, "failureThreshold": 60},
        "livenessProbe": {**check, "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 3},
        "readinessProbe": {**check, "periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 2},
        "resources": {"requests": {"cpu": spec.cpu, "memory": spec.memory}, "limits": limits},
        "securityContext": {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, the pod's own
        ],
    }
    template_meta: dict[str, Any] = {"labels": _selector()}
    # A new token rolls the pods: a container reads its environment only when it starts.
    if spec.token or spec.token_revision:
        identity = spec.token or f"revision:{spec.token_revision}"
        template_meta["annotations"] = {"checksum/token": hashlib.sha256(identity.encode()).hexdigest()}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(spec, APP),
        "spec": {
            "replicas": spec.replicas,
            # Immutable once created: gateways deployed by earlier releases select by name only.
            "selector": {"matchLabels": {"app.kubernetes.io/name": APP}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": template_meta,
                "spec": {
                    "serviceAccountName": APP,
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_S,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": USER,
                        "runAsGroup": USER,
                        "fsGroup": USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "data", "emptyDir": {"sizeLimit": DATA_DIR_SIZE}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": TMP_DIR_SIZE}},
                    ],
                },
            },
        },
    }


def gateway_manifests(spec: GatewaySpec) -> list[dict[str, Any]]:
    """Every object, in the order they are applied (and the reverse of teardown)."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": _meta(spec, spec.namespace, namespaced=False),
        },
        *network_policies(spec),
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(spec, APP),
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _meta(spec, TOKEN_SECRET),
            "type": "Opaque",
            "data": {TOKEN_KEY: base64.b64encode(spec.token.encode()).decode()},
        },
        _deployment(spec),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {**_meta(spec, APP), "annotations": dict(NLB_ANNOTATIONS)},
            "spec": {
                "type": "LoadBalancer",
                "selector": _selector(),
                "ports": [
                    {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                    {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"},
                ],
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": _meta(spec, APP),
            # One pod at a time, however many the autoscaler runs.
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _selector()}},
        },
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": _meta(spec, APP),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
                "minReplicas": spec.replicas,
                "maxReplicas": max(spec.max_replicas, spec.replicas),
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": CPU_TARGET},
                        },
                    }
                ],
            },
        },
    ]
