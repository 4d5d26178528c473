"""Schema-driven fuzzing: every operation of the served OpenAPI document (drf-spectacular, at
/api/schema/), run by schemathesis against the WSGI app as an organization's owner (a logged-in
session), with inputs the schema allows and inputs it forbids. No answer may be a 5xx, and the
documented answers must match their schemas. Path parameters name real objects (the owner's
organization, a real cluster) so that the requests reach the views' validation, not a 404.

The agent API's raw ASGI endpoints are not in the document: they are fuzzed beside it, with
bodies made from gateway_agent.protocol's models and broken by hand.

Each case runs in a savepoint rolled back after it, so every case starts from the same world:
no case renames the organization or deletes the cluster from under the next."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import schemathesis
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django_tenants.utils import schema_context
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from rest_framework.test import APIClient
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from saas.gateways.models import GatewayCluster
from tenants.roles import Role

MAX_EXAMPLES = 4  # per operation and generation mode
DEADLINE_MS = 5_000

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=DEADLINE_MS,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)
CHECKS = [not_a_server_error, response_schema_conformance]


class _Rollback(Exception):
    """Raised after each case to roll back its savepoint."""


def _session_headers(user) -> tuple[dict[str, str], dict[str, str]]:
    client = APIClient()
    client.force_login(user)
    csrf = client.get("/api/v1/auth/csrf/").json()["csrf_token"]
    cookies = {"sessionid": client.cookies["sessionid"].value, "csrftoken": client.cookies["csrftoken"].value}
    return cookies, {"X-CSRFToken": csrf}


@contextmanager
def _connection_kept_open() -> Iterator[None]:
    """The WSGI handler closes the database connection when a request ends (request_finished);
    the test's transaction lives on it. Django's test client does the same."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _run_case(case: Any, app: WSGIHandler, cookies: dict[str, str], headers: dict[str, str]) -> int:
    try:
        with transaction.atomic():
            response = case.call(app=app, cookies=cookies, headers=headers)
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            finally:
                raise _Rollback(response.status_code)
    except _Rollback as done:
        return int(done.args[0])


def test_every_operation_of_the_schema_answers_without_a_5xx(world):
    side = world.a
    with schema_context(side.org.schema_name):
        cluster = GatewayCluster.objects.create(name="production")
    document = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    schema = schemathesis.openapi.from_dict(document)
    app = WSGIHandler()
    cookies, headers = _session_headers(side.user(Role.OWNER))
    real = {"org_slug": side.org.slug, "cluster_id": str(cluster.id)}

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50, len(operations)
    figures = {"operations": len(operations), "cases": 0, "statuses": {}}
    started = time.monotonic()
    failures: list[str] = []
    ungenerated: list[str] = []
    per_operation: dict[str, list[int]] = {}

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @FUZZ_SETTINGS
            @given(case=operation.as_strategy(generation_mode=mode), real_ids=st.booleans())
            def fuzz(case: Any, real_ids: bool) -> None:
                # Mostly real objects; sometimes whatever was generated (unknown ids must be 404).
                for name, value in real.items():
                    if name in (case.path_parameters or {}) and (real_ids or name == "org_slug"):
                        case.path_parameters[name] = value
                if real_ids and case.operation.path.endswith("/clusters/{id}/"):
                    case.path_parameters["id"] = real["cluster_id"]
                status = _run_case(case, app, cookies, headers)
                figures["cases"] += 1
                figures["statuses"][status] = figures["statuses"].get(status, 0) + 1
                per_operation.setdefault(f"{case.method} {case.operation.path}", []).append(status)

            label = f"{operation.method.upper()} {operation.path} ({mode.value})"
            try:
                with _connection_kept_open():
                    fuzz()
            except Unsatisfiable:
                continue  # no input of this mode exists (say, a negative case of an empty body)
            except Exception as exc:  # every operation's failure, reported together below
                message = str(exc)
                if "Schemathesis does not support this part" in message:
                    ungenerated.append(label)  # a regex its generator cannot follow, for one
                else:
                    failures.append(f"{label}: {message[:3000]}")

    figures["seconds"] = round(time.monotonic() - started, 1)
    figures["ungenerated"] = ungenerated
    if os.environ.get("SCHEMA_FUZZ_VERBOSE"):
        print(json.dumps(per_operation, indent=0))
    print(f"\nschema fuzz: {json.dumps(figures, sort_keys=True)}")
    assert not failures, "\n\n".join(failures)
    assert not any(status >= 500 for status in figures["statuses"])


def test_every_path_answers_an_undocumented_method_with_405_and_allow(world):
    """What the schema leaves out: each path, every method it does not document, as the owner,
    with the path's ids naming real objects. 405 in the error shape, `Allow` without the method."""
    side = world.a
    with schema_context(side.org.schema_name):
        cluster = GatewayCluster.objects.create(name="production")
    document = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    owner = side.client(Role.OWNER)
    checked = 0
    for template, item in document["paths"].items():
        path = template.replace("{org_slug}", side.org.slug).replace("{cluster_id}", str(cluster.id))
        path = re.sub(r"\{[^}]+\}", "1", path.replace("/clusters/{id}/", f"/clusters/{cluster.id}/"))
        documented = {method.upper() for method in item if method in HTTP_METHODS}
        for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE", "TRACE"} - documented):
            cache.clear()  # no throttle counts from one request to the next
            response = owner.generic(method, path, b"{}", content_type="application/json")
            checked += 1
            assert response.status_code == 405, (
                method,
                template,
                response.status_code,
                response.content[:300],
            )
            assert set(response.json()) == {"detail"}, (method, template, response.content[:300])
            assert method not in {m.strip() for m in response["Allow"].split(",")}, (method, template)
    print(f"\nundocumented methods: {checked} requests over {len(document['paths'])} paths")
    assert checked > 200, checked


HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


# --- the agent API (raw ASGI, outside the document) ---------------------------


async def _asgi(app: Any, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()],
    }
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), 10)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


MALFORMED_BODIES: list[bytes] = [
    b"",
    b"null",
    b"[]",
    b"{",
    b"\xff\xfe",
    b'"a string"',
    b"1e999",
    b"[" * 5000 + b"]" * 5000,
    b'{"instance_id": "not-a-uuid", "hostname": "h", "agent_version": "1"}',
    b'{"instance_id": 12, "hostname": "h", "agent_version": "1"}',
    b'{"instance_id": "\\u0000", "hostname": "h", "agent_version": "1"}',
    b'{"hostname": "h\\u0000", "agent_version": "1"}',
    b'{"hostname": "h", "agent_version": "1", "labels": {"k\\u0000": "v"}}',
    b'{"hostname": "h", "agent_version": "1", "labels": {"k": "\\u0000"}}',
    b'{"instance_id": "' + b"9" * 5000 + b'"}',
    b'{"instance_id": "x", "applied_version": -1}',
    b'{"instance_id": "x", "applied_version": 99999999999999999999999999}',
    b'{"batch_id": "zz", "instance_id": "i", "window_start": 0, "window_end": 1, "items": []}',
    b'{"batch_id": "'
    + b"a" * 32
    + b'", "instance_id": "i", "window_start": NaN, "window_end": 1, "items": []}',
    b'{"batch_id": "' + b"a" * 32 + b'", "instance_id": "i", "window_start": 0, "window_end": 1,'
    b' "items": [{"minute": -1}]}',
]


@pytest.mark.django_db(transaction=True)  # the raw ASGI endpoints read on other threads
def test_the_agent_api_answers_malformed_input_without_a_5xx():
    from gateway_agent.protocol import Heartbeat, RegisterRequest, UsageBatch
    from saas.gateways.api.config_poll import config_poll_app
    from saas.gateways.api.heartbeat import heartbeat_app
    from saas.gateways.api.register import register_app
    from saas.gateways.services import create_cluster_token
    from saas.metering.api.intake import usage_intake_app
    from saas.metering.api.report import report_app
    from tests.factories import make_org_with_cluster

    organization, author, cluster = make_org_with_cluster()
    with schema_context(organization.schema_name):
        _, secret = create_cluster_token(author, cluster, name="fuzz")
    good = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    tokens = [
        good,
        {"Authorization": "Bearer gct_²_x"},
        {"Authorization": f"Bearer gct_{'9' * 40}_x"},
        {"Authorization": "Bearer gct_1_\x00"},
        {"Authorization": "Basic abc"},
        {},
    ]
    started = time.monotonic()
    cases = 0

    def asgi(app: Any, method: str, path: str, body: bytes, headers: dict[str, str]) -> int:
        status, content = asyncio.run(_asgi(app, method, path, body, headers))
        if status >= 400:
            assert "detail" in json.loads(content), (method, path, body[:80], content[:200])
        return status

    # Hand-written malformed bodies and headers, every method, every endpoint.
    for headers in tokens:
        for body in MALFORMED_BODIES:
            for method in ("POST", "PUT", "GET"):
                status = asgi(register_app, method, "/agent/v1/register", body, headers)
                cases += 1
                assert status < 500, (method, "register", body[:80], headers, status)
                status = asgi(heartbeat_app, method, "/agent/v1/heartbeat", body, headers)
                cases += 1
                assert status < 500, (method, "heartbeat", body[:80], headers, status)
            for method in ("POST", "GET"):
                status = asgi(usage_intake_app, method, "/agent/v1/usage", body, headers)
                cases += 1
                assert status < 500, ("usage", method, body[:80], headers, status)
                status = asgi(report_app, method, "/agent/v1/report", body, headers)
                cases += 1
                assert status < 500, ("report", method, body[:80], headers, status)
    for query in (
        "wait=x",
        "wait=nan",
        "wait=0&version=x",
        "wait=1e999&wait=0",
        "wait=-1",
        "wait=0&version=²",
        "version=" + "9" * 40 + "&wait=0",
        "wait=0&version=-3",
    ):
        for headers in tokens:
            for method in ("GET", "POST"):
                status = asgi(config_poll_app, method, f"/agent/v1/config?{query}", b"", headers)
                cases += 1
                assert status < 500, ("config", method, query, headers, status)

    # The protocol's own models, filled by hypothesis (valid and with any JSON for a field).
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=8,
    )
    agent_settings = settings(
        max_examples=25,
        derandomize=True,
        deadline=DEADLINE_MS,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    for model, path in ((RegisterRequest, "/agent/v1/register"), (Heartbeat, "/agent/v1/heartbeat")):
        fields = [*model.model_fields, "extra"]

        @agent_settings
        @given(path=st.just(path), body=st.dictionaries(st.sampled_from(fields), json_values, max_size=5))
        def fuzz_endpoint(path: str, body: dict[str, Any]) -> None:
            nonlocal cases
            content = json.dumps(body).encode()
            status = asgi(
                heartbeat_app if path == "/agent/v1/heartbeat" else register_app, "POST", path, content, good
            )
            cases += 1
            assert status < 500, (path, body, status)

        fuzz_endpoint()

    @agent_settings
    @given(
        body=st.dictionaries(st.sampled_from([*UsageBatch.model_fields, "extra"]), json_values, max_size=6)
    )
    def fuzz_usage(body: dict[str, Any]) -> None:
        nonlocal cases
        status = asgi(usage_intake_app, "POST", "/agent/v1/usage", json.dumps(body).encode(), good)
        cases += 1
        assert status < 500, (body, status)

    fuzz_usage()

    @agent_settings
    @given(
        heartbeat=st.dictionaries(
            st.sampled_from([*Heartbeat.model_fields, "extra"]), json_values, max_size=4
        ),
        usage=st.none()
        | st.dictionaries(st.sampled_from([*UsageBatch.model_fields, "extra"]), json_values, max_size=6),
    )
    def fuzz_report(heartbeat: dict[str, Any], usage: dict[str, Any] | None) -> None:
        nonlocal cases
        body = json.dumps({"heartbeat": heartbeat, "usage": usage}).encode()
        status = asgi(report_app, "POST", "/agent/v1/report", body, good)
        cases += 1
        assert status < 500, (body, status)

    fuzz_report()
    print(f"\nagent fuzz: {json.dumps({'cases': cases, 'seconds': round(time.monotonic() - started, 1)})}")
