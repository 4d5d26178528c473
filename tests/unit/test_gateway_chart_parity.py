"""helm/gateway (what customers install) and infra/kubernetes/gateway.py (what the one-click AWS
deploy applies) describe the same Kubernetes objects. The chart is rendered here
(tests/helm_template.py: Helm is not installable on the build machines) as release "gateway"
with the values equivalent to a GatewaySpec, and the two are compared object by object, keyed
by kind and name, every field. The differences they are allowed are listed in TOLERATED, each
with its reason; anything else fails with one line per difference."""

from __future__ import annotations

import copy
import dataclasses
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from infra.kubernetes import gateway as gw
from infra.kubernetes.gateway import GatewaySpec, gateway_manifests
from tests.helm_template import Chart, TemplateError, coalesce, go_float

ROOT = Path(__file__).resolve().parents[2]
CHART = Chart(ROOT / "helm" / "gateway")

TOLERATED = {
    "Namespace": "the deployer creates the namespace; Helm does (`--namespace NS --create-namespace`)",
    "helm.sh/chart": "a label only Helm knows: the chart's name and version",
    "Deployment.spec.replicas": (
        "the chart leaves the replica count to the autoscaler; the deployer sets it to the "
        "autoscaler's minimum (a PATCH of replicas shows in the Deployment)"
    ),
    "Deployment.spec.selector": (
        "immutable once a Deployment exists: each side keeps the selector it has always deployed "
        "(the deployer by name, the chart by name and release), so an upgrade applies in place; "
        "the pod labels match both"
    ),
}


def chart_values(spec: GatewaySpec) -> dict[str, Any]:
    """The chart values equivalent to spec. What GatewaySpec does not choose (ports, the agent's
    settings, probes, grace period, ...) is left at values.yaml's, which must therefore be the
    Python module's constants."""
    repository, _, tag = spec.image.rpartition(":")
    assert repository and "/" not in tag, f"{spec.image}: the chart takes repository:tag"
    return {
        "image": {"repository": repository, "tag": tag},
        "controlPlane": {"url": spec.control_plane_url},
        "token": {"existingSecret": "", "value": spec.token, "key": gw.TOKEN_KEY},
        "commonLabels": dict(spec.labels),
        "resources": {
            "requests": {"cpu": spec.cpu, "memory": spec.memory},
            "limits": {"memory": spec.memory_limit, "cpu": spec.cpu_limit or None},
        },
        "service": {"type": "LoadBalancer", "annotations": dict(gw.NLB_ANNOTATIONS)},
        "networkPolicy": {
            "enabled": True,
            "defaultDeny": True,
            "metricsFrom": [],
            "dnsNamespace": gw.DNS_NAMESPACE,
            "excludedCidrs": list(spec.cluster_pod_cidrs) if spec.hosted else [],
            "controlPlane": {
                "cidrs": list(spec.control_plane_cidrs) or [gw.ANYWHERE],
                "port": gw.control_plane_port(spec.control_plane_url),
            },
            "upstreams": [{"cidr": cidr} for cidr in spec.upstream_cidrs],
        },
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
        "autoscaling": {
            "enabled": True,
            "minReplicas": spec.replicas,
            "maxReplicas": max(spec.max_replicas, spec.replicas),
            "targetCPUUtilizationPercentage": gw.CPU_TARGET,
            "targetMemoryUtilizationPercentage": None,
        },
    }


def _key(manifest: dict[str, Any]) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']}"


def chart_objects(spec: GatewaySpec, chart: Chart = CHART) -> dict[str, dict[str, Any]]:
    rendered = chart.manifests(
        chart_values(spec), release=gw.APP, namespace=spec.namespace, service=gw.FIELD_MANAGER
    )
    objects: dict[str, dict[str, Any]] = {}
    for manifest in rendered:
        assert _key(manifest) not in objects, f"the chart renders {_key(manifest)} twice"
        manifest = copy.deepcopy(manifest)
        manifest["metadata"].get("labels", {}).pop("helm.sh/chart", None)
        objects[_key(manifest)] = manifest
    return objects


# What the chart's Deployment selects by (TOLERATED: the deployer's selects by name only).
CHART_DEPLOYMENT_SELECTOR = {
    "matchLabels": {"app.kubernetes.io/name": "gateway", "app.kubernetes.io/instance": "gateway"}
}


def python_objects(spec: GatewaySpec) -> dict[str, dict[str, Any]]:
    objects: dict[str, dict[str, Any]] = {}
    for manifest in gateway_manifests(spec):
        if manifest["kind"] == "Namespace":
            continue
        manifest = copy.deepcopy(manifest)
        if manifest["kind"] == "Deployment":
            manifest["spec"].pop("replicas")
            manifest["spec"]["selector"] = CHART_DEPLOYMENT_SELECTOR
        assert _key(manifest) not in objects, f"Python builds {_key(manifest)} twice"
        objects[_key(manifest)] = manifest
    return objects


def _step(path: str, key: str) -> str:
    return f"{path}.{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else f'{path}["{key}"]'


def _names(items: list[Any]) -> list[str] | None:
    """The items' names when each is an object with a distinct name (env, ports, volumes, ...)."""
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if items and all(isinstance(n, str) for n in names) and len(set(names)) == len(names):
        return names  # type: ignore[return-value]
    return None


def _diff(chart: Any, python: Any, path: str) -> Iterator[str]:
    if isinstance(chart, dict) and isinstance(python, dict):
        for key in sorted(chart.keys() | python.keys()):
            where = _step(path, key).lstrip(".")
            if key not in python:
                yield f"{where}: only in the chart: {chart[key]!r}"
            elif key not in chart:
                yield f"{where}: only in Python: {python[key]!r}"
            else:
                yield from _diff(chart[key], python[key], where)
    elif isinstance(chart, list) and isinstance(python, list):
        chart_names, python_names = _names(chart), _names(python)
        if chart_names is not None and python_names is not None:
            by_name = dict(zip(python_names, python, strict=True))
            for name, item in zip(chart_names, chart, strict=True):
                if name not in by_name:
                    yield f"{path}[{name}]: only in the chart: {item!r}"
                else:
                    yield from _diff(item, by_name[name], f"{path}[{name}]")
            for name, item in zip(python_names, python, strict=True):
                if name not in chart_names:
                    yield f"{path}[{name}]: only in Python: {item!r}"
            common = [n for n in chart_names if n in python_names]
            if common != [n for n in python_names if n in chart_names]:
                yield f"{path}: another order: chart {chart_names}, Python {python_names}"
        elif len(chart) == len(python):
            for i, (a, b) in enumerate(zip(chart, python, strict=True)):
                yield from _diff(a, b, f"{path}[{i}]")
        else:
            yield f"{path}: chart {chart!r}, Python {python!r}"
    elif type(chart) is not type(python) or chart != python:
        yield f"{path}: chart {chart!r}, Python {python!r}"


def differences(chart: dict[str, dict[str, Any]], python: dict[str, dict[str, Any]]) -> list[str]:
    """One readable line per difference: `Kind/name: path: chart X, Python Y`."""
    lines = []
    for key in sorted(chart.keys() | python.keys()):
        if key not in python:
            lines.append(f"{key}: only in the chart (helm/gateway)")
        elif key not in chart:
            lines.append(f"{key}: only in Python (infra/kubernetes/gateway.py)")
        else:
            lines += [f"{key}: {line}" for line in _diff(chart[key], python[key], "")]
    return lines


def _report(lines: list[str]) -> str:
    return "helm/gateway and infra/kubernetes/gateway.py differ:\n  " + "\n  ".join(lines)


CUSTOMER = GatewaySpec(
    namespace="gw-acme",
    image="ghcr.io/gateway-saas/gateway-agent:0.1.0",
    control_plane_url="https://cp.example.com",
    control_plane_cidrs=("203.0.113.10/32", "203.0.113.11/32"),
    token="gct_secret",
    upstream_cidrs=("10.20.0.0/16", "192.0.2.0/24"),
    labels={"gateway-cloud/cluster": "7", "gateway-cloud/deployment": "12"},
)
HOSTED = dataclasses.replace(
    CUSTOMER,
    namespace="gw-org-7",
    control_plane_cidrs=("0.0.0.0/0",),
    upstream_cidrs=("0.0.0.0/0",),
    hosted=True,
    cluster_pod_cidrs=("100.64.0.0/10", "10.244.0.0/16"),
)
SMALL = GatewaySpec(
    namespace="gateway-cloud",
    image="registry.example.com:5000/gateway-agent:0.2.0-rc.1",
    control_plane_url="https://cp.example.com:8443/base",
    control_plane_cidrs=(),
    token="gct_other",
    replicas=1,
    max_replicas=1,
    cpu="500m",
    memory="384Mi",
    cpu_limit="2",
    memory_limit="1Gi",
)
SPECS = {"customer": CUSTOMER, "hosted": HOSTED, "small": SMALL}


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_the_chart_renders_the_objects_the_deployer_applies(spec: GatewaySpec) -> None:
    chart, python = chart_objects(spec), python_objects(spec)
    assert sorted(chart) == sorted(python), _report(differences(chart, python))
    lines = differences(chart, python)
    assert not lines, _report(lines)
    assert {key.split("/")[0] for key in chart} == {
        "NetworkPolicy",
        "ServiceAccount",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    }


def test_the_tolerated_differences_are_what_they_say() -> None:
    manifests = {_key(m): m for m in gateway_manifests(CUSTOMER)}
    assert f"Namespace/{CUSTOMER.namespace}" in manifests
    deployment, hpa = manifests["Deployment/gateway"], manifests["HorizontalPodAutoscaler/gateway"]
    assert deployment["spec"]["replicas"] == hpa["spec"]["minReplicas"] == CUSTOMER.replicas
    rendered = {_key(m): m for m in CHART.manifests(chart_values(CUSTOMER), namespace=CUSTOMER.namespace)}
    assert "replicas" not in rendered["Deployment/gateway"]["spec"]
    version = yaml.safe_load((CHART.root / "Chart.yaml").read_text())["version"]
    assert all(m["metadata"]["labels"]["helm.sh/chart"] == f"gateway-{version}" for m in rendered.values())
    assert not any(m["kind"] == "Namespace" for m in rendered.values())
    assert deployment["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "gateway"}}
    assert rendered["Deployment/gateway"]["spec"]["selector"] == CHART_DEPLOYMENT_SELECTOR
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert CHART_DEPLOYMENT_SELECTOR["matchLabels"].items() <= labels.items()
    assert set(TOLERATED) == {
        "Namespace",
        "helm.sh/chart",
        "Deployment.spec.replicas",
        "Deployment.spec.selector",
    }


# --- the check fails on a deliberate difference --------------------------------------------------


def test_a_changed_object_is_reported_field_by_field() -> None:
    chart, python = chart_objects(CUSTOMER), python_objects(CUSTOMER)
    container = chart["Deployment/gateway"]["spec"]["template"]["spec"]["containers"][0]
    next(e for e in container["env"] if e["name"] == "GATEWAY_HEARTBEAT_S")["value"] = "11"
    container["env"] = [e for e in container["env"] if e["name"] != "GATEWAY_BIND"]
    container["securityContext"]["readOnlyRootFilesystem"] = False
    del chart["PodDisruptionBudget/gateway"]
    lines = differences(chart, python)
    print(_report(lines))
    assert lines == [
        "Deployment/gateway: spec.template.spec.containers[gateway].env[GATEWAY_HEARTBEAT_S].value: "
        "chart '11', Python '10'",
        "Deployment/gateway: spec.template.spec.containers[gateway].env[GATEWAY_BIND]: "
        "only in Python: {'name': 'GATEWAY_BIND', 'value': '*'}",
        "Deployment/gateway: spec.template.spec.containers[gateway].securityContext.readOnlyRootFilesystem: "
        "chart False, Python True",
        "PodDisruptionBudget/gateway: only in Python (infra/kubernetes/gateway.py)",
    ]


def test_a_changed_template_is_reported(tmp_path: Path) -> None:
    """A deliberate difference in the chart's source, the way one would slip in."""
    copied = tmp_path / "gateway"
    shutil.copytree(CHART.root, copied)
    deployment = copied / "templates" / "deployment.yaml"
    text = deployment.read_text()
    edited = text.replace("maxSurge: 1", "maxSurge: 2")
    edited = edited.replace(
        "            - name: GATEWAY_BIND\n",
        '            - name: GATEWAY_POLL_WAIT\n              value: "5"\n            - name: GATEWAY_BIND\n',
    )
    assert edited != text
    deployment.write_text(edited)
    values = copied / "values.yaml"
    values.write_text(values.read_text().replace("  pollWaitSeconds: 30", "  pollWaitSeconds: 25"))

    lines = differences(chart_objects(CUSTOMER, Chart(copied)), python_objects(CUSTOMER))
    print(_report(lines))
    assert lines == [
        "Deployment/gateway: spec.strategy.rollingUpdate.maxSurge: chart 2, Python 1",
        "Deployment/gateway: spec.template.spec.containers[gateway].env[GATEWAY_POLL_WAIT]: "
        "only in the chart: {'name': 'GATEWAY_POLL_WAIT', 'value': '5'}",
        "Deployment/gateway: spec.template.spec.containers[gateway].env[GATEWAY_POLL_WAIT_S].value: "
        "chart '25', Python '30'",
    ]


def test_a_changed_python_object_is_reported() -> None:
    hosted_without_exclusion = dataclasses.replace(HOSTED, cluster_pod_cidrs=())
    lines = differences(chart_objects(HOSTED), python_objects(hosted_without_exclusion))
    print(_report(lines))
    assert lines == [
        "NetworkPolicy/gateway-traffic: spec.egress[1].to[0].ipBlock.except: only in the chart: "
        "['100.64.0.0/10', '10.244.0.0/16']",
        "NetworkPolicy/gateway-traffic: spec.egress[2].to[0].ipBlock.except: only in the chart: "
        "['100.64.0.0/10', '10.244.0.0/16']",
        "NetworkPolicy/gateway-traffic: spec.ingress[0].from: only in the chart: "
        "[{'ipBlock': {'cidr': '0.0.0.0/0', 'except': ['100.64.0.0/10', '10.244.0.0/16']}}]",
    ]
    assert all(line.startswith("NetworkPolicy/gateway-traffic: ") for line in lines), lines


# --- the chart's other settings render valid Kubernetes ------------------------------------------

INSTALL = {"controlPlane": {"url": "https://cp.example.com"}, "token": {"existingSecret": "gateway-token"}}
OVERLAYS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "token value": {"token": {"existingSecret": "", "value": "gct_abc"}},
    "no metrics, tcp probes, no policies": {
        "metrics": {"enabled": False},
        "probes": {"type": "tcp"},
        "networkPolicy": {"enabled": False},
        "podDisruptionBudget": {"enabled": False},
        "serviceAccount": {"create": False},
    },
    "everything set": {
        "nameOverride": "edge",
        "commonLabels": {"team": "platform"},
        "image": {"repository": "registry.example.com/gateway-agent", "tag": "1.2.3", "pullPolicy": "Always"},
        "imagePullSecrets": [{"name": "registry"}],
        "agent": {"heartbeatSeconds": 2.5, "extraEnv": [{"name": "GATEWAY_HAPROXY_BIN", "value": "/x"}]},
        "resources": {"requests": {"cpu": 1, "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
        "securityContext": {"runAsUser": None, "runAsGroup": None, "fsGroup": None},
        "serviceAccount": {"name": "edge-sa", "annotations": {"eks.amazonaws.com/role-arn": "arn:x"}},
        "service": {
            "type": "LoadBalancer",
            "annotations": dict(gw.NLB_ANNOTATIONS),
            "externalTrafficPolicy": "Local",
            "loadBalancerClass": "service.k8s.aws/nlb",
            "loadBalancerSourceRanges": ["198.51.100.0/24"],
        },
        "networkPolicy": {
            "defaultDeny": True,
            "metricsFrom": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
            ],
            "dnsNamespace": "kube-system",
            "excludedCidrs": ["100.64.0.0/10"],
            "controlPlane": {"cidrs": ["203.0.113.0/24", "0.0.0.0/0"], "port": 8443},
            "upstreams": [
                {"cidr": "10.0.0.0/16", "except": ["10.0.5.0/24"], "ports": [80, 443]},
                {"cidr": "0.0.0.0/0", "except": ["10.1.0.0/16"]},
            ],
        },
        "autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80},
        "podAnnotations": {"prometheus.io/scrape": "true"},
        "podLabels": {"tier": "edge"},
        "priorityClassName": "high",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "edge", "operator": "Exists", "effect": "NoSchedule"}],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
            }
        ],
    },
}


@pytest.mark.parametrize("overlay", OVERLAYS.values(), ids=OVERLAYS.keys())
def test_the_rendered_chart_is_valid_kubernetes_in_strict_mode(overlay: dict[str, Any]) -> None:
    values = coalesce(INSTALL, overlay)
    manifests = CHART.manifests(values, release="gw", namespace="gateways")
    assert manifests
    for manifest in manifests:
        kubernetes_validate.validate(manifest, "1.31", strict=True)
        assert manifest["metadata"]["namespace"] == "gateways"
    kinds = [m["kind"] for m in manifests]
    assert kinds.count("Deployment") == 1 and "Service" in kinds
    notes = CHART.render(values, release="gw", namespace="gateways")["templates/NOTES.txt"]
    assert "gateways" in notes


def test_everything_set_renders_what_was_asked() -> None:
    manifests = {
        _key(m): m for m in CHART.manifests(coalesce(INSTALL, OVERLAYS["everything set"]), release="gw")
    }
    pod = manifests["Deployment/gw-edge"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["GATEWAY_HEARTBEAT_S"] == "2.5" and env["GATEWAY_HAPROXY_BIN"] == "/x"
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    policy = manifests["NetworkPolicy/gw-edge-traffic"]["spec"]
    assert policy["egress"][1]["to"] == [
        {"ipBlock": {"cidr": "203.0.113.0/24"}},
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["100.64.0.0/10"]}},
    ]
    assert policy["egress"][3]["to"] == [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.1.0.0/16", "100.64.0.0/10"]}}
    ]
    assert policy["ingress"][1]["ports"] == [{"port": 9101, "protocol": "TCP"}]
    assert manifests["NetworkPolicy/default-deny"]["metadata"]["labels"]["team"] == "platform"
    assert "replicas" not in manifests["Deployment/gw-edge"]["spec"]
    assert [
        m["resource"]["name"] for m in manifests["HorizontalPodAutoscaler/gw-edge"]["spec"]["metrics"]
    ] == [
        "cpu",
        "memory",
    ]


def test_without_metrics_from_nobody_reaches_the_metrics_port() -> None:
    manifests = {_key(m): m for m in CHART.manifests(INSTALL)}
    [rule] = manifests["NetworkPolicy/gateway-traffic"]["spec"]["ingress"]
    assert "from" not in rule and {p["port"] for p in rule["ports"]} == {8080, 8443}


# --- the renderer itself --------------------------------------------------------------------------


def _render(tmp_path: Path, template: str, values: dict[str, Any] | None = None) -> str:
    chart = tmp_path / "c"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 1.0.0\nappVersion: '2'\n")
    (chart / "values.yaml").write_text("{}\n")
    (chart / "templates" / "_h.tpl").write_text('{{- define "c.x" -}}[{{ .a }}]{{- end -}}')
    (chart / "templates" / "t.txt").write_text(template)
    return Chart(chart).render(values or {})["templates/t.txt"]


RENDERER_CASES = [
    ("a {{- ` b ` -}} c", {}, "a b c"),
    (
        "{{ .Values.n }} {{ .Values.n | toString }} {{ .Values.n | int }} {{ .Values.f }}",
        {"n": 10, "f": 0.5},
        "10 10 10 0.5",
    ),
    ("{{ .Values.big }} {{ .Values.big | int }}", {"big": 1000000}, "1e+06 1000000"),
    (
        "{{ range $i, $v := .Values.l }}{{ $i }}={{ $v }};{{ else }}none{{ end }}",
        {"l": ["a", "b"]},
        "0=a;1=b;",
    ),
    ("{{ range .Values.l }}x{{ else }}none{{ end }}", {"l": []}, "none"),
    ("{{ range $k, $v := .Values.m }}{{ $k }}{{ $v }}{{ end }}", {"m": {"b": 2, "a": 1}}, "a1b2"),
    (
        "{{ with .Values.m }}{{ .a }}{{ else }}no{{ end }}{{ with .Values.z }}{{ . }}{{ else }}no{{ end }}",
        {"m": {"a": 1}},
        "1no",
    ),
    ("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", {}, "2"),
    ('{{ if eq .Values.s "a" }}A{{ else if eq .Values.s "b" }}B{{ else }}C{{ end }}', {"s": "b"}, "B"),
    ('{{ include "c.x" (dict "a" .Chart.AppVersion) }}{{ template "c.x" .Values }}', {"a": "v"}, "[2][v]"),
    (
        '{{ default "d" .Values.missing }}|{{ default "d" .Values.e }}|{{ .Values.missing }}',
        {"e": ""},
        "d|d|",
    ),
    (
        "{{ toYaml .Values.m | nindent 2 }}",
        {"m": {"b": [1, {"c": 2.0}], "a": "x: y"}},
        "\n  a: 'x: y'\n  b:\n  - 1\n  - c: 2",
    ),
    (
        '{{ and 1 0 }} {{ or 0 "" 3 }} {{ not .Values.t }} {{ ternary "y" "n" .Values.t }}',
        {"t": True},
        "0 3 false y",
    ),
    ('{{ "ab-" | trunc 2 }} {{ printf "%s-%d" "a" 3 }} {{ quote "q" 1 }}', {}, 'ab a-3 "q" "1"'),
    ('{{ kindIs "invalid" .Values.x }} {{ concat (list 1) (list 2) | toString }}', {}, "true [1 2]"),
    (
        '{{ join "," .Values.l }} {{ first .Values.l }}|{{ first .Values.e }}|{{ join "-" (list 1 .Values.n) }}',
        {"l": ["a", "b"], "e": [], "n": 10},
        "a,b a||1-10",
    ),
]


@pytest.mark.parametrize(("template", "values", "expected"), RENDERER_CASES)
def test_the_renderer_follows_go_templates(
    tmp_path: Path, template: str, values: dict[str, Any], expected: str
) -> None:
    assert _render(tmp_path, template, values) == expected


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("{{ upper .Values.x }}", "function 'upper' not defined here"),
        ("{{ if true }}open", "missing {{ end }}"),
        ("{{ eq .Values.n 1 }}", "incompatible types for comparison"),
        ("{{ .Values.m.a.b }}", "nil pointer evaluating"),
        ("{{ .Values.m }}", "toYaml it"),
        ('{{ include "c.none" . }}', "no template 'c.none'"),
    ],
)
def test_the_renderer_refuses_what_it_does_not_know(tmp_path: Path, template: str, error: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(error)):
        _render(tmp_path, template, {"n": 1, "m": {"a": None}})


def test_go_float_formatting() -> None:
    assert [go_float(x) for x in (10.0, 0.5, 168.0, 1e6, 1234567.0, 0.0001, 0.00001, -2.5)] == [
        "10",
        "0.5",
        "168",
        "1e+06",
        "1.234567e+06",
        "0.0001",
        "1e-05",
        "-2.5",
    ]
