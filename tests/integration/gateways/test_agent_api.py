"""The agent API: gateways register with a cluster token, send heartbeats, and long-poll for
snapshots, which arrive with the secrets they need."""

import asyncio
import json
import threading
import time

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django_redis import get_redis_connection
from django_tenants.utils import schema_context

from tenants.roles import Role
from tests.agent_api import call_agent_api, register_gateway, send_heartbeat
from tests.factories import build_catalog

# The config long-poll reads the database from a shared thread pool, on connections of its own:
# what the tests write must be committed for it to see.
pytestmark = pytest.mark.django_db(transaction=True)


def _token(cw) -> str:
    return cw.client(Role.ADMIN).post(cw.url("tokens/"), {"name": "gw"}, format="json").json()["token"]


def _config(token: str | None, query: str = "wait=0", **headers: str) -> httpx.Response:
    return call_agent_api("GET", f"/agent/v1/config?{query}", token, headers=headers)


def _register(token: str, **extra) -> dict:
    body = {"hostname": "gw-1", "agent_version": "0.1.0", "haproxy_version": "2.6.12", **extra}
    response = register_gateway(token, body)
    assert response.status_code == 201, response.content
    return response.json()


def test_register_heartbeat_and_status(cw):
    token = _token(cw)
    registered = _register(token, labels={"zone": "a"})
    assert registered["cluster_id"] == cw.cluster_id and registered["heartbeat_interval_s"] == 10
    instance_id = registered["instance_id"]
    # Re-registering with its id keeps the identity.
    assert _register(token, instance_id=instance_id)["instance_id"] == instance_id

    assert send_heartbeat(token, instance_id, 3) == 204
    [status] = cw.client(Role.VIEWER).get(cw.url("instances/")).json()["results"]
    assert status["status"] == "online" and status["applied_version"] == 3 and status["hostname"] == "gw-1"

    key = f"gw:status:{cw.world.a.org.schema_name}:{cw.cluster_id}:{instance_id}"
    redis = get_redis_connection("default")
    stale = json.loads(redis.get(key)) | {"at": time.time() - 45, "last_error": "haproxy -c: parse error"}
    redis.set(key, json.dumps(stale))
    [status] = cw.client().get(cw.url("instances/")).json()["results"]
    assert status["status"] == "lost" and status["last_error"] == "haproxy -c: parse error"
    redis.delete(key)
    assert cw.client().get(cw.url("instances/")).json()["results"][0]["status"] == "offline"

    assert send_heartbeat(token, "nope") == 404


def test_agent_endpoints_answer_the_same_with_a_trailing_slash(cw):
    token = _token(cw)
    instance_id = register_gateway(token, path="/agent/v1/register/").json()["instance_id"]
    assert _register(token, instance_id=instance_id)["instance_id"] == instance_id
    beat = {"instance_id": instance_id, "applied_version": None}
    assert call_agent_api("POST", "/agent/v1/heartbeat/", token, beat).status_code == 204
    assert call_agent_api("GET", "/agent/v1/config/?wait=0", token).status_code == 304
    assert call_agent_api("GET", "/agent/v1/report/", token).status_code == 405


def test_bad_and_revoked_tokens_and_bad_bodies(cw):
    assert register_gateway("gct_1_made-up", {}).status_code == 401
    assert _config(None).status_code == 401
    token = _token(cw)
    bad = register_gateway(token, {"hostname": ""})
    assert bad.status_code == 400 and "hostname" in bad.json()["errors"]
    assert register_gateway(token, b"not json").status_code == 400
    token_id = cw.client(Role.ADMIN).get(cw.url("tokens/")).json()["results"][0]["id"]
    cw.client(Role.ADMIN).delete(cw.url(f"tokens/{token_id}/"))
    assert _config(token).status_code == 401
    # A token of organization B does not open A's cluster even with A's id in it.
    b_token = (
        cw.world.b.client(Role.OWNER)
        .post(cw.url("tokens/", side="b"), {"name": "b"}, format="json")
        .json()["token"]
    )
    forged = f"gct_{cw.world.a.org.id}_" + b_token.split("_", 2)[2]
    assert _config(forged).status_code == 401


def test_config_served_with_etag_and_usable_secrets(cw):
    token = _token(cw)
    assert _config(token).status_code == 304  # nothing published yet
    client = cw.client()
    build_catalog(client, cw.url)
    consumer = client.post(cw.url("consumers/"), {"username": "app"}, format="json").json()
    jwt = client.post(
        cw.url(f"consumers/{consumer['id']}/credentials/"), {"type": "jwt-auth", "key": "app"}, format="json"
    ).json()

    response = _config(token)
    assert response.status_code == 200
    served = response.json()
    assert response.headers["ETag"] == f'"{served["version"]}-{served["sha256"]}"'
    [credential] = served["document"]["consumers"][0]["credentials"]
    assert credential["secret"] == jwt["secret"] and "secret_ciphertext" not in credential
    assert [r["name"] for r in served["document"]["routes"]] == ["list-orders"]

    version = served["version"]
    assert _config(token, f"version={version}&wait=0").status_code == 304
    assert _config(token, "wait=0", **{"If-None-Match": response.headers["ETag"]}).status_code == 304
    assert _config(token, "wait=soon").status_code == 400


def test_a_poll_naming_a_version_that_is_not_ascii_digits_is_answered_not_a_500(cw):
    token = _token(cw)
    build_catalog(cw.client(), cw.url)
    # "²".isdigit() is true and int("²") raises: the version is parsed as ASCII digits only.
    answer = _config(token, "version=²&wait=0")
    assert answer.status_code == 200 and answer.json()["version"] >= 1, answer.content


def test_a_rollback_to_an_equal_content_is_served_as_its_own_version(cw):
    """After a rollback (or an edit undone) the latest version has the content of an earlier
    one. The poll must answer that latest version, then wait: answering the earlier version's
    body made agents poll again at once, about 20 times a second, for ever."""
    token = _token(cw)
    client = cw.client()
    build_catalog(client, cw.url)
    first = _config(token).json()
    client.post(
        cw.url("upstreams/"), {"name": "spare", "targets": [{"host": "10.0.0.9", "port": 80}]}, format="json"
    )
    changed = _config(token, f"version={first['version']}&wait=0").json()
    assert changed["version"] > first["version"] and changed["sha256"] != first["sha256"]
    rolled = client.post(cw.url(f"snapshots/{first['version']}/rollback/"))
    assert rolled.status_code == 201, rolled.content
    latest = rolled.json()["version"]
    assert latest > changed["version"] and rolled.json()["sha256"] == first["sha256"]

    # An agent at any earlier version gets the latest version, content equal or not...
    for known in (first["version"], changed["version"]):
        answer = _config(token, f"version={known}&wait=0")
        assert answer.status_code == 200 and answer.json()["version"] == latest
    # ...and an agent at the latest waits.
    assert _config(token, f"version={latest}&wait=0").status_code == 304


@pytest.mark.django_db(transaction=True)
def test_a_waiting_long_poll_wakes_when_a_snapshot_is_published():
    from saas.catalog import services as catalog_services
    from saas.gateways.services import create_cluster_token
    from tests.factories import make_org_with_cluster

    org, author, cluster = make_org_with_cluster()
    with schema_context(org.schema_name):
        catalog_services.save_upstream(
            author, cluster, {"name": "u", "targets": [{"host": "10.0.0.1", "port": 80}]}
        )
        _, token = create_cluster_token(author, cluster, name="gw")

    def publish_later() -> None:
        time.sleep(0.5)
        try:
            with schema_context(org.schema_name):
                catalog_services.save_upstream(
                    author, cluster, {"name": "v", "targets": [{"host": "10.0.0.2", "port": 80}]}
                )
        finally:
            connections.close_all()  # this thread's own connection, before the database's teardown

    async def poll() -> tuple[int, float, dict]:
        from saas.asgi import application

        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://testserver"
        )
        auth = {"Authorization": f"Bearer {token}"}
        first = await client.get("/agent/v1/config?wait=0", headers=auth)
        assert first.status_code == 200, (first.status_code, first.content)
        version = first.json()["version"]
        threading.Thread(target=publish_later).start()
        start = time.monotonic()
        response = await client.get(f"/agent/v1/config?version={version}&wait=20", headers=auth)
        waited = time.monotonic() - start
        await sync_to_async(connections.close_all)()  # the view's thread's connection, before teardown
        return response.status_code, waited, response.json()

    status, waited, body = asyncio.run(poll())
    assert status == 200
    assert 0.4 < waited < 5  # woken by the publish, not by the 20 s timeout
    assert sorted(u["name"] for u in body["document"]["upstreams"]) == ["u", "v"]


def test_a_snapshot_published_while_the_long_poll_looks_is_not_missed(monkeypatch):
    """The notification of a snapshot published while a waiting poll reads the latest version
    must wake that poll, not wait out its timeout."""
    from saas.catalog import services as catalog_services
    from saas.gateways import agents
    from saas.gateways.notifier import snapshot_waiters
    from saas.gateways.services import create_cluster_token
    from saas.gateways.snapshots import snapshot_channel
    from tests.factories import make_org_with_cluster

    org, author, cluster = make_org_with_cluster()
    with schema_context(org.schema_name):
        catalog_services.save_upstream(
            author, cluster, {"name": "u", "targets": [{"host": "10.0.0.1", "port": 80}]}
        )
        _, token = create_cluster_token(author, cluster, name="gw")
    latest_snapshot = agents.latest_snapshot
    armed = threading.Event()

    def latest_then_published(ctx):
        found = latest_snapshot(ctx)
        if armed.is_set():
            armed.clear()
            try:
                with schema_context(org.schema_name):
                    catalog_services.save_upstream(
                        author, cluster, {"name": "v", "targets": [{"host": "10.0.0.2", "port": 80}]}
                    )
            finally:
                connections.close_all()
            time.sleep(0.5)  # the notification reaches the waiting poll meanwhile
        return found

    monkeypatch.setattr(agents, "latest_snapshot", latest_then_published)

    async def poll() -> tuple[int, float, dict]:
        from saas.asgi import application

        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://testserver"
        )
        auth = {"Authorization": f"Bearer {token}"}
        first = await client.get("/agent/v1/config?wait=0", headers=auth)
        version = first.json()["version"]
        # The process remembers the latest version it read: forgotten, so the poll reads it.
        channel = snapshot_channel(org.schema_name, cluster.id)
        snapshot_waiters.forget_latest(channel)
        armed.set()
        start = time.monotonic()
        response = await client.get(f"/agent/v1/config?version={version}&wait=20", headers=auth)
        waited = time.monotonic() - start
        await sync_to_async(connections.close_all)()
        return response.status_code, waited, response.json()

    status, waited, body = asyncio.run(poll())
    assert status == 200
    assert waited < 5  # woken by the publish it read past, not by the 20 s timeout
    assert sorted(u["name"] for u in body["document"]["upstreams"]) == ["u", "v"]
