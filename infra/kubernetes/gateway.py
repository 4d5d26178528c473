"""The Kubernetes objects of one gateway: built here, in one place, for the AWS deployer (server-
side apply into a customer's EKS, or our own for hosted tenants); `helm/gateway` renders the same.

Isolation is by NetworkPolicy: everything in the namespace is denied, then the gateway may take
traffic on its ports from anywhere, and reach only DNS, the control plane and the upstream CIDRs
listed. Hosted (tenants' gateways in our own cluster): "anywhere" excludes the cluster's pod
CIDRs, so no other tenant's namespace can reach a gateway, nor a gateway another namespace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FIELD_MANAGER = "gateway-saas"
HTTP_PORT, HTTPS_PORT, METRICS_PORT = 8080, 8443, 9101
APP = "gateway"
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class GatewaySpec:
    namespace: str
    image: str
    control_plane_url: str
    control_plane_cidrs: tuple[str, ...]
    token: str
    upstream_cidrs: tuple[str, ...] = ()
    replicas: int = 2
    max_replicas: int = 6
    cpu: str = "250m"
    memory: str = "256Mi"
    cpu_limit: str = "1"
    memory_limit: str = "512Mi"
    hosted: bool = False
    cluster_pod_cidrs: tuple[str, ...] = ()  # hosted: where other tenants' pods live
    labels: dict[str, str] = field(default_factory=dict)


def _meta(spec: GatewaySpec, name: str, namespaced: bool = True) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": APP, "app.kubernetes.io/managed-by": FIELD_MANAGER, **spec.labels}
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if namespaced:
        meta["namespace"] = spec.namespace
    return meta


def _peer(cidr: str, spec: GatewaySpec) -> dict[str, Any]:
    block: dict[str, Any] = {"cidr": cidr}
    if spec.hosted and spec.cluster_pod_cidrs and cidr == ANYWHERE:
        block["except"] = list(spec.cluster_pod_cidrs)
    return {"ipBlock": block}


def network_policies(spec: GatewaySpec) -> list[dict[str, Any]]:
    selector = {"matchLabels": {"app.kubernetes.io/name": APP}}
    dns_ports = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    egress: list[dict[str, Any]] = [
        {
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
            "ports": dns_ports,
        },
        {
            "to": [_peer(cidr, spec) for cidr in spec.control_plane_cidrs],
            "ports": [{"protocol": "TCP", "port": 443}],
        },
    ]
    if spec.upstream_cidrs:
        egress.append({"to": [_peer(cidr, spec) for cidr in spec.upstream_cidrs]})
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta(spec, "default-deny"),
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta(spec, "gateway-traffic"),
            "spec": {
                "podSelector": selector,
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    {
                        "from": [_peer(ANYWHERE, spec)],
                        "ports": [
                            {"protocol": "TCP", "port": HTTP_PORT},
                            {"protocol": "TCP", "port": HTTPS_PORT},
                        ],
                    }
                ],
                "egress": egress,
            },
        },
    ]


def _deployment(spec: GatewaySpec) -> dict[str, Any]:
    probe = {"tcpSocket": {"port": HTTP_PORT}, "periodSeconds": 10}
    container = {
        "name": APP,
        "image": spec.image,
        "args": ["run"],
        "env": [
            {"name": "GATEWAY_CONTROL_PLANE", "value": spec.control_plane_url},
            {
                "name": "GATEWAY_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": "gateway-token", "key": "token"}},
            },
            {"name": "GATEWAY_DATA_DIR", "value": "/var/lib/gateway-agent"},
        ],
        "ports": [
            {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
            {"name": "https", "containerPort": HTTPS_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": {**probe, "initialDelaySeconds": 2},
        "livenessProbe": {**probe, "initialDelaySeconds": 15, "failureThreshold": 6},
        "resources": {
            "requests": {"cpu": spec.cpu, "memory": spec.memory},
            "limits": {"cpu": spec.cpu_limit, "memory": spec.memory_limit},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "data", "mountPath": "/var/lib/gateway-agent"},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, the pod's own
        ],
    }
    labels = {"app.kubernetes.io/name": APP}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(spec, APP),
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": APP,
                    "automountServiceAccountToken": False,
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}, "fsGroup": 10001},
                    "terminationGracePeriodSeconds": 60,
                    "containers": [container],
                    "volumes": [{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def gateway_manifests(spec: GatewaySpec) -> list[dict[str, Any]]:
    """Every object, in the order they are applied (and the reverse of teardown)."""
    selector = {"app.kubernetes.io/name": APP}
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
            "metadata": _meta(spec, "gateway-token"),
            "type": "Opaque",
            "stringData": {"token": spec.token},
        },
        _deployment(spec),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                **_meta(spec, APP),
                "annotations": {
                    "service.beta.kubernetes.io/aws-load-balancer-type": "external",
                    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
                    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
                },
            },
            "spec": {
                "type": "LoadBalancer",
                "selector": selector,
                "ports": [
                    {"name": "http", "port": 80, "targetPort": HTTP_PORT, "protocol": "TCP"},
                    {"name": "https", "port": 443, "targetPort": HTTPS_PORT, "protocol": "TCP"},
                ],
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": _meta(spec, APP),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
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
                            "target": {"type": "Utilization", "averageUtilization": 70},
                        },
                    }
                ],
            },
        },
    ]
