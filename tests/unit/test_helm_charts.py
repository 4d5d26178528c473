"""The Helm charts in helm/. Helm is not installed on the build machines: values.yaml is validated
against values.schema.json (with the settings an install must add), bad values must be refused by
the schema, and the templates are checked as text: balanced actions and blocks, defined includes,
`.Values` paths that exist, values that some template uses, the hardened security context, and
environment variable names the programs really read. helm/saas's scale-out objects (replicas,
one beat, PodDisruptionBudgets, autoscalers) are rendered with tests/helm_template.py, as
test_gateway_chart_parity.py renders helm/gateway, and validated against Kubernetes' schemas."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.helm_template import Chart, coalesce

ROOT = Path(__file__).resolve().parents[2]
HELM = ROOT / "helm"
CHARTS = ("gateway", "saas")

# What an install must set on top of values.yaml (the README's install examples): values.yaml
# alone leaves them empty on purpose, so that `helm install` without them fails validation.
INSTALL_VALUES: dict[str, dict[str, Any]] = {
    "gateway": {
        "controlPlane": {"url": "https://cp.example.com"},
        "token": {"existingSecret": "gateway-token"},
    },
    "saas": {
        "secrets": {"existingSecret": "saas-secrets"},
        "config": {"allowedHosts": ["cp.example.com"], "publicUrl": "https://cp.example.com"},
    },
}

ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
VALUES_REF = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
INCLUDE = re.compile(r"\b(?:include|template)\s+\"([^\"]+)\"")
DEFINE = re.compile(r"\bdefine\s+\"([^\"]+)\"")
BLOCK_OPENERS = {"if", "range", "with", "define", "block"}


# --- helpers -----------------------------------------------------------------------------------


def _load_yaml(path: Path) -> Any:
    with path.open() as handle:
        return yaml.safe_load(handle)


def _values(chart: str) -> dict[str, Any]:
    values = _load_yaml(HELM / chart / "values.yaml")
    assert isinstance(values, dict)
    return values


def _schema(chart: str) -> dict[str, Any]:
    schema = json.loads((HELM / chart / "values.schema.json").read_text())
    assert isinstance(schema, dict)
    return schema


def _install_values(chart: str, overlay: dict[str, Any] | None = None) -> dict[str, Any]:
    return coalesce(coalesce(_values(chart), INSTALL_VALUES[chart]), overlay or {})


def _errors(chart: str, values: dict[str, Any]) -> list[jsonschema.ValidationError]:
    return list(jsonschema.Draft7Validator(_schema(chart)).iter_errors(values))


def _resolve(root: dict[str, Any], node: Any) -> dict[str, Any]:
    """The schema node, with a local $ref followed."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = root
        for part in ref[2:].split("/"):
            node = node[part]
    return node if isinstance(node, dict) else {}


def _child(root: dict[str, Any], node: dict[str, Any], key: str) -> dict[str, Any]:
    properties = node.get("properties", {})
    if key in properties:
        return _resolve(root, properties[key])
    extra = node.get("additionalProperties")
    return _resolve(root, extra) if isinstance(extra, dict) else {}


def _free_form(node: dict[str, Any]) -> bool:
    """A map whose keys the user chooses (annotations, affinity, extra settings)."""
    return node.get("additionalProperties", True) is not False and not node.get("properties")


def _templates(chart: str) -> list[Path]:
    paths = sorted((HELM / chart / "templates").iterdir())
    assert paths, f"{chart} has no templates"
    return paths


def _actions(text: str) -> Iterator[str]:
    """The inside of each {{ ... }}, without trim markers and comments."""
    for match in ACTION.finditer(text):
        body = match.group(1).strip()
        body = body.removeprefix("-").removesuffix("-").strip()
        if body.startswith("/*"):
            continue
        yield body


def _value_paths(chart: str) -> dict[tuple[str, ...], list[str]]:
    """Each `.Values.a.b` path the templates reference, with the files that do."""
    found: dict[tuple[str, ...], list[str]] = {}
    for path in _templates(chart):
        for action in _actions(path.read_text()):
            for match in VALUES_REF.finditer(action):
                key = tuple(match.group(1).lstrip(".").split("."))
                found.setdefault(key, []).append(path.name)
    return found


def _defines(chart: str) -> dict[str, str]:
    """The named templates: name to body text."""
    bodies: dict[str, str] = {}
    for path in _templates(chart):
        text = path.read_text()
        for match in DEFINE.finditer(text):
            start = text.index("}}", match.end()) + 2
            depth, position = 1, start
            for action in ACTION.finditer(text, start):
                words = action.group(1).strip().lstrip("-").split()
                word = words[0] if words else ""
                if word in BLOCK_OPENERS:
                    depth += 1
                elif word == "end":
                    depth -= 1
                if depth == 0:
                    position = action.start()
                    break
            bodies[match.group(1)] = text[start:position]
    return bodies


def _expanded(chart: str, text: str, depth: int = 0) -> str:
    """The template's text with its includes' bodies appended (for what-it-contains checks)."""
    assert depth < 10, "includes nest too deep"
    bodies = _defines(chart)
    parts = [text]
    for name in INCLUDE.findall(text):
        parts.append(_expanded(chart, bodies.get(name, ""), depth + 1))
    return "\n".join(parts)


def _workloads(chart: str) -> list[Path]:
    return [
        path
        for path in _templates(chart)
        if re.search(r"^kind: (Deployment|Job)$", path.read_text(), re.MULTILINE)
    ]


# --- Chart.yaml and the schema -------------------------------------------------------------------


@pytest.mark.parametrize("chart", CHARTS)
def test_chart_yaml(chart: str) -> None:
    meta = _load_yaml(HELM / chart / "Chart.yaml")
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == chart
    assert meta["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", str(meta["version"]))
    assert isinstance(meta["appVersion"], str) and meta["appVersion"]
    assert meta["description"]


@pytest.mark.parametrize("chart", CHARTS)
def test_schema_is_a_valid_draft7_schema_and_strict(chart: str) -> None:
    schema = _schema(chart)
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False

    # Every map values.yaml defines with fixed keys refuses unknown keys (a typo in a value is
    # an error, not a silently ignored setting); maps of the user's keys are the exception.
    lax: list[str] = []

    def walk(value: Any, node: dict[str, Any], where: str) -> None:
        if not isinstance(value, dict):
            return
        assert node, (
            f"{chart}: values.yaml has {where or 'the top level'} but the schema does not describe it"
        )
        if _free_form(node):
            return
        if node.get("additionalProperties") is not False:
            lax.append(where)
        for key, child in value.items():
            walk(child, _child(schema, node, key), f"{where}.{key}".lstrip("."))

    walk(_values(chart), schema, "")
    assert not lax, f"{chart}: objects without additionalProperties: false: {lax}"


@pytest.mark.parametrize("chart", CHARTS)
def test_values_yaml_with_the_install_settings_is_valid(chart: str) -> None:
    errors = _errors(chart, _install_values(chart))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


@pytest.mark.parametrize("chart", CHARTS)
def test_values_yaml_alone_lacks_exactly_the_install_settings(chart: str) -> None:
    errors = _errors(chart, _values(chart))
    assert errors, f"{chart}: values.yaml alone should not be installable"
    assert {e.absolute_path[0] for e in errors if e.absolute_path} == set(INSTALL_VALUES[chart])
    assert all(e.absolute_path for e in errors), [e.message for e in errors]


GOOD_VALUES: list[tuple[str, dict[str, Any]]] = [
    ("gateway", {"token": {"existingSecret": "", "value": "gct_abc"}}),
    ("gateway", {"metrics": {"enabled": False}, "probes": {"type": "tcp"}}),
    (
        "gateway",
        {
            "service": {
                "annotations": {
                    "service.beta.kubernetes.io/aws-load-balancer-type": "external",
                    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
                    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
                },
                "externalTrafficPolicy": "Local",
            },
            "networkPolicy": {
                "controlPlane": {"cidrs": ["203.0.113.0/24"]},
                "upstreams": [{"cidr": "10.0.0.0/16", "except": ["10.0.5.0/24"], "ports": [80, 443]}],
                "defaultDeny": True,
                "dnsNamespace": "kube-system",
                "excludedCidrs": ["100.64.0.0/10"],
            },
            "commonLabels": {"gateway-cloud/cluster": "7"},
            "autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80},
            "securityContext": {"runAsUser": None, "fsGroup": None},
        },
    ),
    (
        "saas",
        {
            "secrets": {
                "existingSecret": "",
                "databaseUrl": "postgresql://saas:pw@db.example.com:5432/saas?sslmode=require",
                "redisUrl": "rediss://cache.example.com:6379/0",
                "djangoSecretKey": "k" * 50,
                "fieldEncryptionKey": "a-fernet-key",
                "stripeSecretKey": "sk_live_x",
            }
        },
    ),
    ("saas", {"ingress": {"enabled": True, "className": "alb"}, "config": {"extra": {"FOO": "bar"}}}),
]


@pytest.mark.parametrize(("chart", "overlay"), GOOD_VALUES)
def test_schema_accepts_good_values(chart: str, overlay: dict[str, Any]) -> None:
    errors = _errors(chart, _install_values(chart, overlay))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


BAD_VALUES: list[tuple[str, str, dict[str, Any]]] = [
    ("gateway", "negative replicas", {"replicas": -1}),
    ("gateway", "replicas as a string", {"replicas": "2"}),
    ("gateway", "unknown top-level key", {"replica": 2}),
    ("gateway", "unknown nested key", {"service": {"typ": "NodePort"}}),
    ("gateway", "no token at all", {"token": {"existingSecret": "", "value": ""}}),
    ("gateway", "both token sources", {"token": {"value": "gct_abc"}}),
    ("gateway", "no control plane", {"controlPlane": {"url": ""}}),
    ("gateway", "control plane without a scheme", {"controlPlane": {"url": "cp.example.com"}}),
    ("gateway", "metrics probes without metrics", {"metrics": {"enabled": False}}),
    ("gateway", "unknown service type", {"service": {"type": "Ingress"}}),
    ("gateway", "port out of range", {"ports": {"http": 70000}}),
    ("gateway", "upstream without a CIDR", {"networkPolicy": {"upstreams": [{"ports": [80]}]}}),
    ("gateway", "not a CIDR", {"networkPolicy": {"controlPlane": {"cidrs": ["example.com"]}}}),
    (
        "gateway",
        "autoscaling without a target",
        {"autoscaling": {"enabled": True, "targetCPUUtilizationPercentage": None}},
    ),
    ("gateway", "root user", {"securityContext": {"runAsUser": 0}}),
    ("gateway", "a label of the chart's own", {"commonLabels": {"app.kubernetes.io/name": "x"}}),
    ("gateway", "an excluded CIDR that is not one", {"networkPolicy": {"excludedCidrs": ["pods"]}}),
    ("gateway", "the disruption budget's old key", {"podDisruptionBudget": {"minAvailable": 1}}),
    ("saas", "negative replicas", {"web": {"replicas": -1}}),
    ("saas", "unknown top-level key", {"replicas": 2}),
    ("saas", "more than one beat", {"beat": {"replicas": 2}}),
    ("saas", "an autoscaled beat", {"beat": {"autoscaling": {"enabled": True}}}),
    ("saas", "a disruption budget for beat", {"beat": {"podDisruptionBudget": {"enabled": True}}}),
    ("saas", "an autoscaled worker", {"worker": {"autoscaling": {"enabled": True}}}),
    ("saas", "an autoscaler down to no pod", {"web": {"autoscaling": {"minReplicas": 0}}}),
    ("saas", "no CPU target", {"usageConsumer": {"autoscaling": {"targetCPUUtilizationPercentage": 0}}}),
    ("saas", "a budget that evicts nothing", {"worker": {"podDisruptionBudget": {"maxUnavailable": 0}}}),
    ("saas", "autoscaling on memory", {"web": {"autoscaling": {"targetMemoryUtilizationPercentage": 80}}}),
    ("saas", "no secrets at all", {"secrets": {"existingSecret": ""}}),
    ("saas", "both secret sources", {"secrets": {"databaseUrl": "postgresql://db/saas"}}),
    (
        "saas",
        "created secret without its encryption key",
        {
            "secrets": {
                "existingSecret": "",
                "databaseUrl": "postgresql://db/saas",
                "redisUrl": "redis://cache:6379/0",
                "djangoSecretKey": "k" * 50,
            }
        },
    ),
    (
        "saas",
        "not a PostgreSQL URL",
        {
            "secrets": {
                "existingSecret": "",
                "databaseUrl": "mysql://db/saas",
                "redisUrl": "redis://cache:6379/0",
                "djangoSecretKey": "k" * 50,
                "fieldEncryptionKey": "a-fernet-key",
            }
        },
    ),
    ("saas", "unknown migration executor", {"migrations": {"executor": "parallel"}}),
    ("saas", "no allowed hosts", {"config": {"allowedHosts": []}}),
    ("saas", "public URL without a scheme", {"config": {"publicUrl": "cp.example.com"}}),
    ("saas", "ingress without hosts", {"ingress": {"enabled": True, "hosts": []}}),
    ("saas", "unknown config key", {"config": {"allowed_hosts": ["x"]}}),
]


@pytest.mark.parametrize(
    ("chart", "overlay"), [(c, o) for c, _, o in BAD_VALUES], ids=[f"{c}: {d}" for c, d, _ in BAD_VALUES]
)
def test_schema_refuses_bad_values(chart: str, overlay: dict[str, Any]) -> None:
    assert _errors(chart, _install_values(chart, overlay))


# --- templates -----------------------------------------------------------------------------------


@pytest.mark.parametrize("chart", CHARTS)
def test_chart_has_the_expected_templates(chart: str) -> None:
    names = {path.name for path in _templates(chart)}
    expected = {
        "gateway": {
            "_helpers.tpl",
            "deployment.yaml",
            "secret.yaml",
            "service.yaml",
            "networkpolicy.yaml",
            "pdb.yaml",
            "hpa.yaml",
            "serviceaccount.yaml",
            "NOTES.txt",
        },
        "saas": {
            "_helpers.tpl",
            "web-deployment.yaml",
            "worker-deployment.yaml",
            "beat-deployment.yaml",
            "usage-consumer-deployment.yaml",
            "pdb.yaml",
            "hpa.yaml",
            "migrations-job.yaml",
            "service.yaml",
            "ingress.yaml",
            "configmap.yaml",
            "secret.yaml",
            "serviceaccount.yaml",
            "NOTES.txt",
        },
    }[chart]
    assert names == expected


@pytest.mark.parametrize("chart", CHARTS)
def test_templates_are_balanced(chart: str) -> None:
    problems: list[str] = []
    for path in _templates(chart):
        text = path.read_text()
        if "\t" in text and path.suffix == ".yaml":
            problems.append(f"{path.name}: a tab (YAML indents with spaces)")
        # Delimiters alternate {{ }} {{ }} ..., never nested, never left open.
        expected = "{{"
        for match in re.finditer(r"\{\{|\}\}", text):
            if match.group() != expected:
                line = text.count("\n", 0, match.start()) + 1
                problems.append(f"{path.name}:{line}: unexpected {match.group()}")
                break
            expected = "}}" if expected == "{{" else "{{"
        else:
            if expected != "{{":
                problems.append(f"{path.name}: an action is not closed")
        # Blocks: every if/range/with/define has its end; else only inside a block.
        depth = 0
        for action in _actions(text):
            word = action.split()[0] if action.split() else ""
            if word in BLOCK_OPENERS:
                depth += 1
            elif word == "end":
                depth -= 1
                if depth < 0:
                    problems.append(f"{path.name}: an end without a block")
                    break
            elif word == "else" and depth == 0:
                problems.append(f"{path.name}: an else outside a block")
        if depth > 0:
            problems.append(f"{path.name}: {depth} block(s) without end")
        if path.suffix == ".tpl":
            assert "apiVersion:" not in text, f"{path.name}: helpers render nothing themselves"
    assert not problems, problems


@pytest.mark.parametrize("chart", CHARTS)
def test_included_templates_are_defined_with_the_chart_prefix(chart: str) -> None:
    defined = _defines(chart)
    assert defined, f"{chart}: no named templates"
    assert all(name.startswith(f"{chart}.") for name in defined), list(defined)
    missing = {
        f"{path.name}: {name}"
        for path in _templates(chart)
        for name in INCLUDE.findall(path.read_text())
        if name not in defined
    }
    assert not missing, sorted(missing)


@pytest.mark.parametrize("chart", CHARTS)
def test_templates_reference_only_values_that_exist(chart: str) -> None:
    values, schema = _values(chart), _schema(chart)
    paths = _value_paths(chart)
    assert paths, f"{chart}: the templates use no values"
    missing: list[str] = []
    for path, files in sorted(paths.items()):
        node: Any = values
        node_schema: dict[str, Any] = schema
        for key in path:
            if isinstance(node, dict) and key in node:
                node, node_schema = node[key], _child(schema, node_schema, key)
                continue
            if isinstance(node, dict) and _free_form(node_schema):
                break  # a key of a user-chosen map, e.g. .Values.podAnnotations.foo
            missing.append(f".Values.{'.'.join(path)} ({', '.join(sorted(set(files)))}): no {key!r}")
            break
    assert not missing, missing


@pytest.mark.parametrize("chart", CHARTS)
def test_every_value_is_used_by_a_template(chart: str) -> None:
    """A value no template reads would be a setting that silently does nothing."""
    values, schema = _values(chart), _schema(chart)
    used = set(_value_paths(chart))
    leaves: list[tuple[str, ...]] = []

    def walk(value: Any, node: dict[str, Any], where: tuple[str, ...]) -> None:
        if isinstance(value, dict) and value and not _free_form(node):
            for key, child in value.items():
                walk(child, _child(schema, node, key), (*where, key))
        else:
            leaves.append(where)

    walk(values, schema, ())
    unused = [
        ".".join(leaf)
        for leaf in leaves
        if not any(leaf[: len(path)] == path or path[: len(leaf)] == leaf for path in used)
    ]
    assert not unused, f"{chart}: values no template uses: {unused}"


@pytest.mark.parametrize("chart", CHARTS)
def test_workloads_run_hardened(chart: str) -> None:
    workloads = _workloads(chart)
    assert workloads
    required = [
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        'drop: ["ALL"]',
        "type: RuntimeDefault",
        "mountPath: /tmp",
        "emptyDir:",
        "automountServiceAccountToken: false",
    ]
    problems = [
        f"{path.name}: {needle}"
        for path in workloads
        for needle in required
        if needle not in _expanded(chart, path.read_text())
    ]
    assert not problems, problems
    values = _values(chart)
    assert values["securityContext"]["runAsUser"] >= 1


# --- what the charts run matches the programs ----------------------------------------------------


def test_gateway_sets_only_variables_the_agent_reads() -> None:
    cli = (ROOT / "gateway_agent" / "cli.py").read_text()
    read = set(re.findall(r"\"(GATEWAY_[A-Z_]+)\"", cli))
    assert {"GATEWAY_CONTROL_PLANE", "GATEWAY_TOKEN", "GATEWAY_DATA_DIR"} <= read
    deployment = (HELM / "gateway" / "templates" / "deployment.yaml").read_text()
    set_names = set(re.findall(r"- name: (GATEWAY_[A-Z_]+)", deployment))
    assert set_names - read == set(), f"variables the agent does not read: {set_names - read}"
    assert {"GATEWAY_CONTROL_PLANE", "GATEWAY_TOKEN", "GATEWAY_DATA_DIR"} <= set_names
    # The data folder the image declares is the one the chart mounts.
    dockerfile = (ROOT / "images" / "gateway" / "Containerfile").read_text()
    data_dir = re.search(r"GATEWAY_DATA_DIR=(\S+)", dockerfile)
    assert data_dir is not None
    assert f"mountPath: {data_dir.group(1)}" in deployment
    user = re.search(r"--uid (\d+)", dockerfile)
    assert user is not None
    assert _values("gateway")["securityContext"]["runAsUser"] == int(user.group(1))
    # The probes ask HAProxy's exporter where the agent's configuration serves it.
    renderer = (ROOT / "gateway_agent" / "renderer.py").read_text()
    assert "{ path /metrics }" in renderer
    assert 'dict "path" "/metrics" "port" "metrics"' in deployment


def _settings_variables() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "saas" / "settings").glob("*.py"):
        names |= set(re.findall(r"env_\w+\(\s*\"([A-Z][A-Z0-9_]*)\"", path.read_text()))
    return names


def test_saas_config_and_secret_hold_settings_the_control_plane_reads() -> None:
    read = _settings_variables()
    assert {"DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEY", "SAAS_ENV"} <= read
    process_env = {"HOME", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
    templates = HELM / "saas" / "templates"
    config = set(
        re.findall(r"^  ([A-Z][A-Z0-9_]*):", (templates / "configmap.yaml").read_text(), re.MULTILINE)
    )
    secret = set(re.findall(r"^  ([A-Z][A-Z0-9_]*):", (templates / "secret.yaml").read_text(), re.MULTILINE))
    assert config - read - process_env == set()
    assert secret - read == set()
    assert {
        "DATABASE_URL",
        "REDIS_URL",
        "DJANGO_SECRET_KEY",
        "FIELD_ENCRYPTION_KEY",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
    } <= secret
    assert {"SAAS_ENV", "DJANGO_ALLOWED_HOSTS", "SAAS_PUBLIC_URL"} <= config
    assert "SAAS_ENV: production" in (templates / "configmap.yaml").read_text()


def test_saas_runs_what_the_launcher_runs() -> None:
    launcher = (ROOT / "saas" / "launcher" / "__main__.py").read_text()
    templates = HELM / "saas" / "templates"
    web = (templates / "web-deployment.yaml").read_text()
    assert "saas.asgi:application" in launcher and "- saas.asgi:application" in web
    assert "path: /readyz" in web and "path: /healthz" in web
    worker = (templates / "worker-deployment.yaml").read_text()
    assert '"worker",' in launcher and "- worker\n" in worker
    beat = (templates / "beat-deployment.yaml").read_text()
    assert '"beat",' in launcher and "- beat\n" in beat
    assert re.search(r"^  replicas: 1$", beat, re.MULTILINE) and "beat.replicas" not in beat
    assert "type: Recreate" in beat
    consumer = (templates / "usage-consumer-deployment.yaml").read_text()
    assert '"consume_usage"' in launcher and "- consume_usage\n" in consumer
    # The migrations: the launcher's commands, as a hook before the release's pods.
    job = (templates / "migrations-job.yaml").read_text()
    assert (
        '_manage(env, "migrate_schemas"' in launcher and '_manage(env, "ensure_template_schema")' in launcher
    )
    assert "python manage.py migrate_schemas --noinput --executor={{ .Values.migrations.executor }}" in job
    assert job.index("migrate_schemas") < job.index("ensure_template_schema")
    assert "helm.sh/hook: pre-install,pre-upgrade" in job
    # The Secret and ConfigMap the Job reads exist before it (hooks of a lower weight).
    hooks = _defines("saas")["saas.configHookAnnotations"]
    assert "helm.sh/hook: pre-install,pre-upgrade" in hooks and 'hook-weight: "-10"' in hooks
    for name in ("configmap.yaml", "secret.yaml"):
        assert 'include "saas.configHookAnnotations"' in (templates / name).read_text()


# --- helm/saas rendered: replicas, one beat, disruption budgets, autoscalers ---------------------

SAAS = Chart(HELM / "saas")
SCALED = ("web", "usage-consumer", "worker")  # components that run several pods; beat never does


def _saas_objects(overlay: dict[str, Any] | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """helm/saas rendered with the install settings and `overlay`, each object checked against
    Kubernetes 1.31's schemas (strict), by (kind, component)."""
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for manifest in SAAS.manifests(_install_values("saas", overlay), release="cp", namespace="cp"):
        kubernetes_validate.validate(manifest, "1.31", strict=True)
        component = manifest["metadata"]["labels"]["app.kubernetes.io/component"]
        key = (manifest["kind"], component)
        assert key not in objects, key
        objects[key] = manifest
    return objects


def _kinds(objects: dict[tuple[str, str], dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {component: manifest for (k, component), manifest in objects.items() if k == kind}


def test_saas_runs_two_of_each_and_one_beat_with_disruption_budgets_by_default() -> None:
    objects = _saas_objects()
    deployments = _kinds(objects, "Deployment")
    assert {c: d["spec"].get("replicas") for c, d in deployments.items()} == {
        "web": 2,
        "usage-consumer": 2,
        "worker": 2,
        "beat": 1,
    }
    assert deployments["beat"]["spec"]["strategy"] == {"type": "Recreate"}
    budgets = _kinds(objects, "PodDisruptionBudget")
    assert set(budgets) == set(SCALED)
    for component, budget in budgets.items():
        assert budget["apiVersion"] == "policy/v1"
        assert budget["metadata"]["name"] == f"cp-saas-{component}"
        assert budget["spec"]["maxUnavailable"] == 1
        # The budget selects exactly its component's pods.
        pods = deployments[component]["spec"]["template"]["metadata"]["labels"]
        selector = budget["spec"]["selector"]["matchLabels"]
        assert selector == deployments[component]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pods.items() and selector["app.kubernetes.io/component"] == component
    assert not _kinds(objects, "HorizontalPodAutoscaler")  # off by default


def test_saas_gives_a_lone_pod_no_disruption_budget() -> None:
    objects = _saas_objects(
        {"web": {"replicas": 1}, "usageConsumer": {"replicas": 1}, "worker": {"replicas": 1}}
    )
    assert not _kinds(objects, "PodDisruptionBudget")
    objects = _saas_objects({"worker": {"replicas": 3, "podDisruptionBudget": {"maxUnavailable": 2}}})
    assert _kinds(objects, "PodDisruptionBudget")["worker"]["spec"]["maxUnavailable"] == 2
    off = {"podDisruptionBudget": {"enabled": False}}
    objects = _saas_objects({"web": off, "usageConsumer": off, "worker": off})
    assert not _kinds(objects, "PodDisruptionBudget")


def test_saas_autoscales_web_and_consumers_on_cpu_when_asked() -> None:
    autoscaling = {"enabled": True, "minReplicas": 3, "maxReplicas": 12, "targetCPUUtilizationPercentage": 60}
    objects = _saas_objects(
        {
            "web": {"autoscaling": autoscaling},
            "usageConsumer": {"autoscaling": {**autoscaling, "minReplicas": 1}},
        }
    )
    deployments = _kinds(objects, "Deployment")
    autoscalers = _kinds(objects, "HorizontalPodAutoscaler")
    assert set(autoscalers) == {"web", "usage-consumer"}
    for component, hpa in autoscalers.items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": deployments[component]["metadata"]["name"],
        }
        assert hpa["spec"]["maxReplicas"] == 12
        assert hpa["spec"]["metrics"] == [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
            }
        ]
        # The autoscaler owns the count: an upgrade must not reset it to `replicas`.
        assert "replicas" not in deployments[component]["spec"]
        # Utilization is of the CPU the pods request.
        [container] = deployments[component]["spec"]["template"]["spec"]["containers"]
        assert container["resources"]["requests"]["cpu"]
    assert autoscalers["web"]["spec"]["minReplicas"] == 3
    assert autoscalers["usage-consumer"]["spec"]["minReplicas"] == 1
    assert deployments["worker"]["spec"]["replicas"] == 2 and deployments["beat"]["spec"]["replicas"] == 1
    # The budget follows the autoscaler's minimum, not `replicas`: none for consumers going down to one.
    assert set(_kinds(objects, "PodDisruptionBudget")) == {"web", "worker"}


def test_saas_never_scales_beat() -> None:
    many = {"replicas": 5, "autoscaling": {"enabled": True, "minReplicas": 3}}
    objects = _saas_objects({"web": many, "usageConsumer": many, "worker": {"replicas": 5}})
    assert _kinds(objects, "Deployment")["beat"]["spec"]["replicas"] == 1
    assert [kind for kind, component in objects if component == "beat"] == ["Deployment"]
    notes = SAAS.render(_install_values("saas", {"web": many}), release="cp")["templates/NOTES.txt"]
    assert "web (3 to 10 replicas, autoscaled on CPU)" in notes and "Celery beat (1)" in notes
