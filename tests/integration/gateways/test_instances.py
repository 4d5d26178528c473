"""The instances list: every field the agent sends on register and heartbeat (id, hostname,
agent and HAProxy versions, applied vs latest version, last heartbeat, last error) and the
address the control plane saw it call from; searched, sorted, filtered by status, paginated."""

import json
import time

import pytest
from django_redis import get_redis_connection

from tenants.roles import Role
from tests.agent_api import register_gateway, registered_instance, send_heartbeat
from tests.factories import build_catalog

# Heartbeats are served beside Django and authenticate on a thread of their own: the token must
# be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def _agent(cw) -> str:
    """A cluster token's secret."""
    return cw.client(Role.ADMIN).post(cw.url("tokens/"), {"name": "gw"}, format="json").json()["token"]


def _beat(secret: str, instance_id: str, version: int | None, error: str | None = None, **extra) -> None:
    assert send_heartbeat(secret, instance_id, version, error, **extra) == 204


def test_instances_show_what_the_agent_sent_and_where_from(cw):
    build_catalog(cw.client(), cw.url)  # versions 1 to 3
    agent = _agent(cw)
    current = registered_instance(agent, hostname="gw-current")
    behind = registered_instance(agent, hostname="gw-behind")
    silent = registered_instance(agent, hostname="gw-silent")
    _beat(agent, current, 3, peer="10.1.2.3")
    _beat(agent, behind, 2, "haproxy -c: unknown keyword")

    listed = cw.client(Role.VIEWER).get(cw.url("instances/"))
    assert listed.status_code == 200
    body = listed.json()
    assert body["count"] == 3 and body["next"] is None
    rows = {row["hostname"]: row for row in body["results"]}
    row = rows["gw-current"]
    assert row["instance_id"] == current and isinstance(row["id"], int)
    assert row["agent_version"] == "0.3.1" and row["haproxy_version"] == "2.8.5"
    assert row["address"] == "10.1.2.3"  # the heartbeat's, newer than the registration's
    assert row["status"] == "online" and row["last_heartbeat_at"]
    assert row["applied_version"] == 3 and row["latest_version"] == 3 and row["on_latest_version"] is True
    assert row["token"].startswith("gct_") and row["registered_at"]
    assert rows["gw-behind"]["on_latest_version"] is False
    assert rows["gw-behind"]["last_error"] == "haproxy -c: unknown keyword"
    assert rows["gw-behind"]["address"] == "127.0.0.1"
    assert rows["gw-silent"]["instance_id"] == silent
    assert rows["gw-silent"]["status"] == "offline" and rows["gw-silent"]["last_heartbeat_at"] is None


def test_instances_are_searched_sorted_filtered_and_paginated(cw):
    agent = _agent(cw)
    ids = {name: registered_instance(agent, hostname=name) for name in ("edge-b", "edge-a", "core-1")}
    _beat(agent, ids["edge-a"], None)
    _beat(agent, ids["core-1"], None)
    key = f"gw:status:{cw.world.a.org.schema_name}:{cw.cluster_id}:{ids['core-1']}"
    redis = get_redis_connection("default")
    redis.set(key, json.dumps(json.loads(redis.get(key)) | {"at": time.time() - 60}))  # lost

    client = cw.client(Role.VIEWER)
    names = lambda query: [r["hostname"] for r in client.get(cw.url(f"instances/{query}")).json()["results"]]  # noqa: E731
    assert names("") == ["edge-b", "edge-a", "core-1"]  # as registered
    assert names("?ordering=hostname") == ["core-1", "edge-a", "edge-b"]
    assert names("?search=EDGE&ordering=-hostname") == ["edge-b", "edge-a"]
    assert names(f"?search={ids['core-1'][:8]}") == ["core-1"]
    assert names("?ordering=status") == ["edge-a", "core-1", "edge-b"]  # online, lost, offline
    assert names("?ordering=-last_heartbeat_at") == ["edge-a", "core-1", "edge-b"]  # none: last
    assert names("?status=lost") == ["core-1"]
    page = client.get(cw.url("instances/?ordering=hostname&page_size=2&page=2")).json()
    assert page["count"] == 3 and [r["hostname"] for r in page["results"]] == ["edge-b"]
    bad = client.get(cw.url("instances/?status=sleeping"))
    assert bad.status_code == 400 and "status" in bad.json()["errors"]
    assert client.get(cw.url("instances/?ordering=labels")).status_code == 400


def test_an_unusable_forwarded_address_is_left_out(cw, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    body = {"hostname": "behind-proxy", "agent_version": "0.3.1"}
    response = register_gateway(_agent(cw), body, headers={"X-Forwarded-For": "not-an-ip"})
    assert response.status_code == 201
    [row] = cw.client().get(cw.url("instances/")).json()["results"]
    assert row["address"] is None and row["haproxy_version"] == ""
