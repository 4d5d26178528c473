"""The gateway's Kubernetes objects: valid for Kubernetes 1.31 in strict mode, and their
NetworkPolicies allow exactly the traffic listed (gateway ports in from anywhere; out only DNS,
the control plane and the upstream CIDRs), hosted ones no traffic from other tenants' pods.
That helm/gateway renders the same objects: test_gateway_chart_parity.py."""

from __future__ import annotations

import ipaddress
from typing import Any

import kubernetes_validate
import pytest

from infra.kubernetes.gateway import GatewaySpec, gateway_manifests, network_policies

SPEC = GatewaySpec(
    namespace="gw-acme",
    image="ghcr.io/gateway-saas/gateway-agent:0.1.0",
    control_plane_url="https://cp.example.com",
    control_plane_cidrs=("203.0.113.10/32",),
    token="gct_secret",
    upstream_cidrs=("10.20.0.0/16",),
)
HOSTED = GatewaySpec(**{**SPEC.__dict__, "hosted": True, "cluster_pod_cidrs": ("100.64.0.0/10",)})


@pytest.mark.parametrize("spec", [SPEC, HOSTED], ids=["customer", "hosted"])
def test_every_manifest_is_valid_kubernetes_in_strict_mode(spec):
    manifests = gateway_manifests(spec)
    assert [m["kind"] for m in manifests] == [
        "Namespace",
        "NetworkPolicy",
        "NetworkPolicy",
        "ServiceAccount",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    ]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, "1.31", strict=True)
    deployment = manifests[5]["spec"]["template"]["spec"]
    security = deployment["containers"][0]["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert not security["allowPrivilegeEscalation"] and security["capabilities"] == {"drop": ["ALL"]}
    assert manifests[6]["spec"]["type"] == "LoadBalancer"
    assert (
        manifests[6]["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-type"]
        == "external"
    )


def _matches(peer: dict[str, Any], source: dict[str, str]) -> bool:
    if "ipBlock" in peer:
        if "ip" not in source:
            return False
        ip = ipaddress.ip_address(source["ip"])
        block = peer["ipBlock"]
        return ip in ipaddress.ip_network(block["cidr"]) and not any(
            ip in ipaddress.ip_network(cidr) for cidr in block.get("except", [])
        )
    if "namespaceSelector" in peer:
        labels = peer["namespaceSelector"].get("matchLabels", {})
        return source.get("namespace") is not None and labels == {
            "kubernetes.io/metadata.name": source["namespace"]
        }
    return False


def allowed(
    policies: list[dict[str, Any]], direction: str, peer: dict[str, str], port: int, protocol: str = "TCP"
) -> bool:
    """Kubernetes semantics for the gateway pod: denied unless some policy's rule allows it."""
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in policies:
        spec = policy["spec"]
        if direction not in spec["policyTypes"]:
            continue
        for rule in spec.get(key, []):
            ports = rule.get("ports")
            port_ok = ports is None or any(
                p["port"] == port and p.get("protocol", "TCP") == protocol for p in ports
            )
            peers = rule.get(peers_key)
            peer_ok = peers is None or any(_matches(p, peer) for p in peers)
            if port_ok and peer_ok:
                return True
    return False


def test_network_policies_allow_and_forbid_exactly_what_is_listed():
    policies = network_policies(SPEC)
    internet = {"ip": "198.51.100.7"}
    for port in (8080, 8443):
        assert allowed(policies, "Ingress", internet, port)
    for port in (9101, 22, 5432):
        assert not allowed(policies, "Ingress", internet, port)
    assert allowed(policies, "Egress", {"namespace": "kube-system"}, 53, "UDP")
    assert allowed(policies, "Egress", {"namespace": "kube-system"}, 53, "TCP")
    assert not allowed(policies, "Egress", {"namespace": "kube-system"}, 443)
    assert allowed(policies, "Egress", {"ip": "203.0.113.10"}, 443)
    assert not allowed(policies, "Egress", {"ip": "203.0.113.10"}, 80)
    assert not allowed(policies, "Egress", {"ip": "203.0.113.11"}, 443)
    assert allowed(policies, "Egress", {"ip": "10.20.3.4"}, 8000)
    assert allowed(policies, "Egress", {"ip": "10.20.3.4"}, 53, "UDP")  # an upstream: every port
    assert not allowed(policies, "Egress", {"ip": "10.21.0.1"}, 8000)
    assert not allowed(policies, "Egress", internet, 443)
    assert not allowed(policies, "Egress", {"namespace": "other-tenant"}, 8080)


def test_hosted_gateways_take_no_traffic_from_other_tenants_pods():
    policies = network_policies(HOSTED)
    assert allowed(policies, "Ingress", {"ip": "198.51.100.7"}, 8080)
    assert not allowed(policies, "Ingress", {"ip": "100.64.12.9"}, 8080)  # a pod of another tenant
    assert not allowed(policies, "Ingress", {"namespace": "gw-other"}, 8080)
    assert not allowed(policies, "Egress", {"namespace": "gw-other"}, 8080)


def test_the_control_plane_is_reached_on_its_urls_port_and_anywhere_when_no_cidr_is_known():
    spec = GatewaySpec(
        **{**SPEC.__dict__, "control_plane_url": "https://cp.example.com:8443/", "control_plane_cidrs": ()}
    )
    policies = network_policies(spec)
    assert allowed(policies, "Egress", {"ip": "198.51.100.7"}, 8443)
    assert not allowed(policies, "Egress", {"ip": "198.51.100.7"}, 443)
    hosted = GatewaySpec(**{**HOSTED.__dict__, "control_plane_cidrs": ()})
    assert not allowed(network_policies(hosted), "Egress", {"ip": "100.64.12.9"}, 443)  # a tenant's pod


def test_the_pods_run_the_agent_as_its_image_expects():
    deployment = next(m for m in gateway_manifests(SPEC) if m["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GATEWAY_CONTROL_PLANE"] == "https://cp.example.com"
    assert (
        env["GATEWAY_METRICS_PORT"] == "9101" and container["readinessProbe"]["httpGet"]["port"] == "metrics"
    )
    assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["runAsNonRoot"]
    # The pods carry every label the Deployment selects by (by name: a selector cannot change).
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == {"app.kubernetes.io/name": "gateway"}
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    # A new token changes the pod template, so that the pods restart with it.
    other = next(
        m
        for m in gateway_manifests(GatewaySpec(**{**SPEC.__dict__, "token": "gct_new"}))
        if m["kind"] == "Deployment"
    )
    assert other["spec"]["template"]["metadata"] != deployment["spec"]["template"]["metadata"]
