"""The fake Kubernetes API server, driven by the real `kubernetes` client: server-side apply through
DynamicClient and the typed APIs, simulated rollouts and load balancers, generations, namespace
deletion, authentication and injected failures."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client, dynamic
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import (
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    UnauthorizedError,
)

from tests.fakes.kubernetes_api import APPLY_CONTENT_TYPE, KINDS, FakeKubernetes

TOKEN = "t0ken"
MANAGER = "gateway-saas"
NS = "acme"


@pytest.fixture
def fake() -> Iterator[FakeKubernetes]:
    server = FakeKubernetes()
    server.expected_token = TOKEN
    yield server
    server.close()


def _api_client(url: str, token: str = TOKEN) -> client.ApiClient:
    config = client.Configuration(
        host=url, api_key={"authorization": token}, api_key_prefix={"authorization": "Bearer"}
    )
    return client.ApiClient(config)


@pytest.fixture
def api(fake: FakeKubernetes) -> Iterator[client.ApiClient]:
    api_client = _api_client(fake.url)
    yield api_client
    api_client.close()


@pytest.fixture
def dyn(api: client.ApiClient, tmp_path: Path) -> dynamic.DynamicClient:
    # Discovery is cached in a file keyed by host; a fresh one per test keeps tests apart.
    return dynamic.DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))


def _apply(dyn: dynamic.DynamicClient, body: dict[str, Any], manager: str = MANAGER) -> Any:
    resource = dyn.resources.get(api_version=body["apiVersion"], kind=body["kind"])
    return resource.server_side_apply(body=body, field_manager=manager, force_conflicts=True)


def _namespace(name: str = NS) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"tier": "pro"}}}


def _deployment(image: str = "gateway:1.0", replicas: int = 3, ns: str = NS) -> dict[str, Any]:
    labels = {"app": "gateway"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "gateway", "namespace": ns, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": "gateway", "image": image, "ports": [{"containerPort": 8080}]}]
                },
            },
        },
    }


def _service(ns: str = NS) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "gateway", "namespace": ns},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": "gateway"},
            "ports": [{"port": 443, "targetPort": 8080}],
        },
    }


def _rollout_state(deployment: dict[str, Any]) -> str:
    """What `kubectl rollout status` decides from a Deployment: done, waiting or failed."""
    status = deployment.get("status") or {}
    if deployment["metadata"]["generation"] > status.get("observedGeneration", 0):
        return "waiting"
    for condition in status.get("conditions") or []:
        if condition["type"] == "Progressing" and condition["reason"] == "ProgressDeadlineExceeded":
            return "failed"
    replicas = deployment["spec"]["replicas"]
    updated = status.get("updatedReplicas", 0)
    if (
        updated < replicas
        or status.get("replicas", 0) > updated
        or status.get("availableReplicas", 0) < updated
    ):
        return "waiting"
    return "done"


def _wait_rollout(dyn: dynamic.DynamicClient, ns: str = NS, timeout: float = 10) -> tuple[str, int]:
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    polls = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        polls += 1
        state = _rollout_state(deployments.get(name="gateway", namespace=ns).to_dict())
        if state != "waiting":
            return state, polls
        time.sleep(0.05)
    return "timeout", polls


def test_discovery_resolves_every_gateway_kind(dyn: dynamic.DynamicClient) -> None:
    for kind in KINDS:
        resource = dyn.resources.get(api_version=kind.api_version, kind=kind.kind)
        assert (resource.kind, resource.group_version, resource.name) == (
            kind.kind,
            kind.api_version,
            kind.plural,
        )
        assert resource.namespaced is kind.namespaced
    assert dyn.version["kubernetes"]["gitVersion"] == "v1.31.0"


def test_server_side_apply_through_dynamic_client_and_wait_for_rollout(
    fake: FakeKubernetes, dyn: dynamic.DynamicClient
) -> None:
    fake.rollout_delay_s = 0.4
    namespace = _apply(dyn, _namespace())
    assert namespace.metadata.name == NS
    assert namespace.status.phase == "Active"
    applied_at = time.monotonic()
    deployment = _apply(dyn, _deployment())
    service = _apply(dyn, _service())

    # What the server got and recorded.
    assert [(a.kind, a.namespace, a.name, a.field_manager, a.force) for a in fake.applies] == [
        ("Namespace", None, NS, MANAGER, True),
        ("Deployment", NS, "gateway", MANAGER, True),
        ("Service", NS, "gateway", MANAGER, True),
    ]
    assert fake.applies[1].body == _deployment()
    patches = [r for r in fake.requests if r.method == "PATCH"]
    assert [r.path for r in patches] == [
        f"/api/v1/namespaces/{NS}",
        f"/apis/apps/v1/namespaces/{NS}/deployments/gateway",
        f"/api/v1/namespaces/{NS}/services/gateway",
    ]
    assert {r.content_type for r in patches} == {APPLY_CONTENT_TYPE}
    assert {r.query["fieldManager"] for r in patches} == {MANAGER}
    assert {r.query["force"] for r in patches} == {"true"}

    # The apply answers carry server-set metadata; the rollout has not happened yet.
    assert deployment.metadata.generation == 1
    assert deployment.metadata.uid
    assert deployment.metadata.managedFields[0].manager == MANAGER
    assert deployment.metadata.managedFields[0].operation == "Apply"
    assert deployment.status.updatedReplicas == 0
    assert _rollout_state(deployment.to_dict()) == "waiting"
    assert not service.status.loadBalancer.get("ingress")

    state, polls = _wait_rollout(dyn)
    assert state == "done"
    assert polls > 1  # a waiter saw it in progress first
    assert time.monotonic() - applied_at >= fake.rollout_delay_s
    status = (
        dyn.resources.get(api_version="apps/v1", kind="Deployment").get(name="gateway", namespace=NS).status
    )
    assert status.observedGeneration == 1
    assert (status.replicas, status.updatedReplicas, status.readyReplicas, status.availableReplicas) == (
        3,
        3,
        3,
        3,
    )
    progressing = next(c for c in status.conditions if c.type == "Progressing")
    assert (progressing.status, progressing.reason) == ("True", "NewReplicaSetAvailable")

    read = dyn.resources.get(api_version="v1", kind="Service").get(name="gateway", namespace=NS)
    assert read.status.loadBalancer.ingress[0].hostname == f"gateway-{NS}.elb.us-east-1.amazonaws.com"
    assert read.spec.clusterIP  # defaulted by the server
    assert read.spec.ports[0].protocol == "TCP"


def _wire(api: client.ApiClient, model: object) -> dict[str, Any]:
    """A typed client model as the JSON the server sent (camelCase keys)."""
    wire: dict[str, Any] = api.sanitize_for_serialization(model)
    return wire


def test_typed_client_apply_and_reads(fake: FakeKubernetes, api: client.ApiClient) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    created = core.patch_namespace(
        NS, _namespace(), field_manager=MANAGER, force=True, _content_type=APPLY_CONTENT_TYPE
    )
    assert isinstance(created, client.V1Namespace)
    assert _wire(api, created)["metadata"]["labels"] == {"tier": "pro"}
    deployment = apps.patch_namespaced_deployment(
        "gateway", NS, _deployment(), field_manager=MANAGER, force=True, _content_type=APPLY_CONTENT_TYPE
    )
    assert isinstance(deployment, client.V1Deployment)
    wire = _wire(api, deployment)
    assert wire["spec"]["template"]["spec"]["containers"][0]["image"] == "gateway:1.0"
    assert wire["metadata"]["managedFields"][0]["manager"] == MANAGER
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "gateway-keys", "namespace": NS},
        "stringData": {"api-key": "s3cret"},
    }
    core.patch_namespaced_secret(
        "gateway-keys", NS, secret, field_manager=MANAGER, force=True, _content_type=APPLY_CONTENT_TYPE
    )
    stored = _wire(api, core.read_namespaced_secret("gateway-keys", NS))
    assert stored["type"] == "Opaque"
    assert base64.b64decode(stored["data"]["api-key"]) == b"s3cret"  # stringData is stored as data
    assert "stringData" not in stored

    status = _wire(api, apps.read_namespaced_deployment_status("gateway", NS))["status"]
    assert (status["updatedReplicas"], status["availableReplicas"]) == (3, 3)
    listed = _wire(api, apps.list_namespaced_deployment(NS))
    assert [d["metadata"]["name"] for d in listed["items"]] == ["gateway"]
    pro = _wire(api, core.list_namespace(label_selector="tier=pro"))
    assert [n["metadata"]["name"] for n in pro["items"]] == [NS]
    assert _wire(api, core.list_namespace(label_selector="tier=free"))["items"] == []
    assert _wire(api, client.VersionApi(api).get_code())["gitVersion"] == "v1.31.0"
    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_deployment("nope", NS)
    assert missing.value.status == 404
    assert fake.get("Deployment", "gateway", NS) is not None


def test_generation_bumps_only_when_the_spec_changes(
    fake: FakeKubernetes, dyn: dynamic.DynamicClient
) -> None:
    _apply(dyn, _namespace())
    first = _apply(dyn, _deployment())
    assert _wait_rollout(dyn)[0] == "done"
    before = fake.get("Deployment", "gateway", NS)
    assert before is not None
    again = _apply(dyn, _deployment())
    assert again.metadata.generation == first.metadata.generation == 1
    assert again.metadata.resourceVersion == before["metadata"]["resourceVersion"]  # a no-op writes nothing
    assert again.status.to_dict() == before["status"]  # and starts no rollout

    relabelled = _deployment()
    relabelled["metadata"]["labels"] = {"app": "gateway", "plan": "pro"}
    labelled = _apply(dyn, relabelled)
    assert labelled.metadata.generation == 1  # metadata is not spec
    assert labelled.metadata.labels.plan == "pro"
    assert int(labelled.metadata.resourceVersion) > int(first.metadata.resourceVersion)

    fake.rollout_delay_s = 0.2
    changed = _apply(dyn, _deployment(image="gateway:1.1"))
    assert changed.metadata.generation == 2
    assert changed.metadata.uid == first.metadata.uid
    assert changed.metadata.creationTimestamp == first.metadata.creationTimestamp
    assert changed.metadata.labels.to_dict() == {"app": "gateway"}  # the applier dropped `plan`
    assert changed.spec.template.spec.containers[0].image == "gateway:1.1"
    assert _rollout_state(changed.to_dict()) == "waiting"
    state, polls = _wait_rollout(dyn)
    assert (state, polls > 1) == ("done", True)
    final = fake.get("Deployment", "gateway", NS)
    assert final is not None
    assert final["status"]["observedGeneration"] == 2


def test_failed_rollout_reports_progress_deadline_exceeded(
    fake: FakeKubernetes, dyn: dynamic.DynamicClient
) -> None:
    fake.fail_rollout = True
    _apply(dyn, _namespace())
    _apply(dyn, _deployment())
    assert _wait_rollout(dyn)[0] == "failed"
    deployment = fake.get("Deployment", "gateway", NS)
    assert deployment is not None
    progressing = next(c for c in deployment["status"]["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")


def test_deleting_the_namespace_deletes_what_is_in_it(
    fake: FakeKubernetes, dyn: dynamic.DynamicClient
) -> None:
    for ns in (NS, "other"):
        _apply(dyn, _namespace(ns))
        _apply(dyn, _deployment(ns=ns))
        _apply(dyn, _service(ns=ns))
        _apply(
            dyn,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cfg", "namespace": ns},
                "data": {"a": "1"},
            },
        )
    namespaces = dyn.resources.get(api_version="v1", kind="Namespace")
    answer = namespaces.delete(name=NS)
    assert (answer.kind, answer.status, answer.details.name) == ("Status", "Success", NS)

    with pytest.raises(NotFoundError) as missing:
        namespaces.get(name=NS)
    assert missing.value.status == 404
    assert json.loads(missing.value.body or "{}")["reason"] == "NotFound"
    for api_version, kind in (("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "ConfigMap")):
        resource = dyn.resources.get(api_version=api_version, kind=kind)
        assert resource.get(namespace=NS).items == []
        assert [item.metadata.namespace for item in resource.get().items] == ["other"]  # all namespaces
    assert [n.metadata.name for n in namespaces.get().items] == ["other"]
    with pytest.raises(NotFoundError):
        namespaces.delete(name=NS)
    with pytest.raises(NotFoundError):  # nothing can be applied into a namespace that is gone
        _apply(dyn, _deployment())


def test_wrong_token_is_unauthorized(fake: FakeKubernetes, tmp_path: Path) -> None:
    wrong = _api_client(fake.url, token="not-it")
    try:
        with pytest.raises(ApiException) as denied:
            client.CoreV1Api(wrong).patch_namespace(
                NS, _namespace(), field_manager=MANAGER, _content_type=APPLY_CONTENT_TYPE
            )
        assert denied.value.status == 401
        with pytest.raises(UnauthorizedError):
            dynamic.DynamicClient(wrong, cache_file=str(tmp_path / "discovery.json"))
    finally:
        wrong.close()
    assert fake.tokens and set(fake.tokens) == {"Bearer not-it"}
    assert fake.applies == []
    assert fake.get("Namespace", NS) is None


def test_fail_next_fails_only_the_matching_requests(fake: FakeKubernetes, dyn: dynamic.DynamicClient) -> None:
    _apply(dyn, _namespace())
    fake.fail_next("PATCH", "Deployment", times=2, status=500)
    for _ in range(2):
        with pytest.raises(InternalServerError) as failed:
            _apply(dyn, _deployment())
        assert failed.value.status == 500
    assert fake.get("Deployment", "gateway", NS) is None
    _apply(dyn, _service())  # another kind is unaffected
    assert _apply(dyn, _deployment()).metadata.generation == 1  # the third attempt goes through
    assert [a.kind for a in fake.applies] == ["Namespace", "Service", "Deployment"]

    services = dyn.resources.get(api_version="v1", kind="Service")
    fake.fail_next("GET", "Service", status=503)
    with pytest.raises(ApiException) as unavailable:
        services.get(name="gateway", namespace=NS)
    assert unavailable.value.status == 503
    assert services.get(name="gateway", namespace=NS).metadata.name == "gateway"

    # With Retry-After on a 503, urllib3 (under the client) waits and retries a GET by itself.
    fake.fail_next("GET", "Service", status=503, retry_after=1)
    started, path = time.monotonic(), f"/api/v1/namespaces/{NS}/services/gateway"
    seen = len([r for r in fake.requests if r.path == path])
    assert services.get(name="gateway", namespace=NS).metadata.name == "gateway"
    assert time.monotonic() - started >= 1
    assert len([r for r in fake.requests if r.path == path]) == seen + 2


def test_apply_needs_a_field_manager_and_a_matching_body(
    fake: FakeKubernetes, dyn: dynamic.DynamicClient
) -> None:
    _apply(dyn, _namespace())
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    with pytest.raises(BadRequestError) as no_manager:
        deployments.patch(body=_deployment(), content_type=APPLY_CONTENT_TYPE)  # no field_manager
    assert "fieldManager" in str(no_manager.value.body)
    renamed = _deployment()
    renamed["metadata"]["name"] = "other"
    with pytest.raises(BadRequestError):
        deployments.server_side_apply(body=renamed, name="gateway", field_manager=MANAGER)
    assert fake.applies_of("Deployment") == []


def test_conflicting_managers_need_force(fake: FakeKubernetes, dyn: dynamic.DynamicClient) -> None:
    _apply(dyn, _namespace())
    _apply(dyn, _deployment(replicas=3))
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    with pytest.raises(ConflictError) as conflict:
        deployments.server_side_apply(body=_deployment(replicas=5), field_manager="someone-else")
    causes = json.loads(conflict.value.body or "{}")["details"]["causes"]
    assert causes == [
        {"reason": "FieldManagerConflict", "message": f'conflict with "{MANAGER}"', "field": ".spec"}
    ]
    # Applying the same values is no conflict.
    same = deployments.server_side_apply(body=_deployment(replicas=3), field_manager="someone-else")
    assert {m.manager for m in same.metadata.managedFields} == {MANAGER, "someone-else"}
    forced = deployments.server_side_apply(
        body=_deployment(replicas=5), field_manager="someone-else", force_conflicts=True
    )
    assert forced.spec.replicas == 5
    assert forced.metadata.generation == 2
    owners = {m.manager: m.fieldsV1.to_dict() for m in forced.metadata.managedFields}
    assert "f:spec" in owners["someone-else"]
    assert "f:spec" not in owners[MANAGER]  # taken over; the labels stay the first manager's


def test_yaml_body_and_status_codes_over_plain_http(fake: FakeKubernetes) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": APPLY_CONTENT_TYPE}
    config_map = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: acme\ndata:\n  a: '1'\n"
    )
    with httpx.Client(base_url=fake.url, headers=headers) as http:
        url = f"/api/v1/namespaces/{NS}/configmaps/cfg"
        assert (
            http.patch(url, params={"fieldManager": MANAGER}, content=config_map).status_code == 404
        )  # no ns
        ns_yaml = f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n"
        assert (
            http.patch(
                f"/api/v1/namespaces/{NS}", params={"fieldManager": MANAGER}, content=ns_yaml
            ).status_code
            == 201
        )
        created = http.patch(url, params={"fieldManager": MANAGER}, content=config_map)
        assert created.status_code == 201
        assert created.json()["data"] == {"a": "1"}
        again = http.patch(url, params={"fieldManager": MANAGER}, content=config_map)
        assert again.status_code == 200
        assert http.patch(url, content=config_map).status_code == 400  # fieldManager is required
        merge = http.patch(url, content="{}", headers={"Content-Type": "application/merge-patch+json"})
        assert merge.status_code == 415
        listed = http.get(f"/api/v1/namespaces/{NS}/configmaps").json()
        assert (listed["kind"], listed["apiVersion"]) == ("ConfigMapList", "v1")
        assert [i["metadata"]["name"] for i in listed["items"]] == ["cfg"]
        assert listed["metadata"]["resourceVersion"]
        gone = http.get(f"/api/v1/namespaces/{NS}/configmaps/nope")
        assert gone.status_code == 404
        assert gone.json() == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": 'configmaps "nope" not found',
            "reason": "NotFound",
            "code": 404,
            "details": {"name": "nope", "group": "", "kind": "configmaps"},
        }
        assert http.delete(url).json()["status"] == "Success"
        assert http.delete(url).status_code == 404
        assert http.get("/version").json()["gitVersion"] == "v1.31.0"
    applied = [(a.namespace, a.name, a.field_manager, a.body["data"]) for a in fake.applies_of("ConfigMap")]
    assert applied == [(NS, "cfg", MANAGER, {"a": "1"})] * 2  # the refused ones are not recorded
