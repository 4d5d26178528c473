"""The overview of an organization and of a cluster: gateways online/lost/offline and on the
latest version, the last hour's requests with 4xx and 5xx apart and a per-minute series, the top
failing routes by name, quota used against the allowance, and recent changes with who made them.
Each part as the caller's role allows."""

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django_redis import get_redis_connection

from gateway_agent.protocol import UsageBatch, UsageItem
from saas.metering.services import record_usage_batches
from tenants.roles import Role
from tests.agent_api import registered_instance, send_heartbeat
from tests.factories import PASSWORD, build_catalog

NOW = datetime(2026, 11, 28, 12, 0, 30, tzinfo=UTC)
THIS_MINUTE = NOW.replace(second=0)
# The gateways' heartbeats are served beside Django and check the token on a thread of their own.
pytestmark = [pytest.mark.time_machine(NOW, tick=False), pytest.mark.django_db(transaction=True)]


def _usage(cw, *items: tuple[datetime, int, str, int]) -> None:
    """(minute, route id, status class, requests), recorded as the usage consumer records them."""
    batch = UsageBatch(
        batch_id=uuid.uuid4().hex,
        instance_id="gw-1",
        window_start=min(at for at, *_ in items).timestamp(),
        window_end=max(at for at, *_ in items).timestamp() + 60,
        items=[
            UsageItem(minute=int(at.timestamp()), route_id=route, status_class=status, requests=requests)
            for at, route, status, requests in items
        ],
    )
    record_usage_batches(cw.world.a.org.schema_name, [(cw.cluster_id, batch)])


def _gateways(cw) -> None:
    """Three instances: one online on the latest version, one lost on an older one, one offline."""
    secret = cw.client(Role.ADMIN).post(cw.url("tokens/"), {"name": "gw"}, format="json").json()["token"]
    ids = [registered_instance(secret, hostname=hostname) for hostname in ("gw-1", "gw-2", "gw-3")]
    for instance_id, version in zip(ids[:2], (3, 1), strict=True):
        assert send_heartbeat(secret, instance_id, version) == 204
    key = f"gw:status:{cw.world.a.org.schema_name}:{cw.cluster_id}:{ids[1]}"
    redis = get_redis_connection("default")
    redis.set(key, json.dumps(json.loads(redis.get(key)) | {"at": time.time() - 120}))


@pytest.fixture
def busy(cw):
    """A catalog with two routes, gateways, and an hour of traffic with errors."""
    client = cw.client(Role.DEVELOPER)
    made = build_catalog(client, cw.url)  # versions 1-3; route "list-orders"
    other = client.post(
        cw.url("routes/"),
        {"name": "create-order", "service": "orders-api", "paths": [{"value": "/checkout"}]},
        format="json",
    ).json()  # version 4
    client.delete(cw.url(f"routes/{other['id']}/"))  # version 5
    gone = other["id"]
    listing = made["routes"]["id"]
    _gateways(cw)
    _usage(
        cw,
        (THIS_MINUTE - timedelta(minutes=5), listing, "2xx", 90),
        (THIS_MINUTE - timedelta(minutes=5), listing, "5xx", 6),
        (THIS_MINUTE - timedelta(minutes=5), listing, "4xx", 4),
        (THIS_MINUTE, gone, "4xx", 10),
        (THIS_MINUTE, gone, "2xx", 10),
        (THIS_MINUTE - timedelta(minutes=59), 0, "4xx", 3),
        (THIS_MINUTE - timedelta(minutes=60), listing, "5xx", 1000),  # over an hour ago
    )
    return {"listing": listing, "gone": gone}


def test_cluster_overview(cw, busy):
    response = cw.client(Role.VIEWER).get(cw.url("overview/"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["cluster"] == {"id": cw.cluster_id, "name": "production", "latest_version": 5}
    assert body["gateways"] == {
        "total": 3,
        "online": 1,
        "lost": 1,
        "offline": 1,
        "on_latest_version": 0,
        "outdated": 2,
    }

    traffic = body["traffic"]
    assert traffic["requests"] == 123 and traffic["errors_5xx"] == 6 and traffic["errors_4xx"] == 17
    assert traffic["error_rate_5xx_percent"] == round(100 * 6 / 123, 2)
    assert traffic["error_rate_4xx_percent"] == round(100 * 17 / 123, 2)
    series = traffic["series"]
    assert len(series) == 60
    assert datetime.fromisoformat(series[-1]["t"]) == THIS_MINUTE
    assert datetime.fromisoformat(series[0]["t"]) == THIS_MINUTE - timedelta(minutes=59)
    assert series[-6] | {"t": None} == {"t": None, "requests": 100, "errors_4xx": 4, "errors_5xx": 6}
    assert series[0]["requests"] == 3 and series[-1]["requests"] == 20
    assert sum(point["requests"] for point in series) == 123

    failing = body["top_failing_routes"]
    assert [(r["route_id"], r["name"]) for r in failing] == [
        (busy["listing"], "list-orders"),  # 6 5xx
        (busy["gone"], None),  # deleted since; 10 4xx
        (0, None),  # matched no route; 3 4xx
    ]
    assert failing[0] | {"cluster_id": 0} == {
        "cluster_id": 0,
        "cluster": "production",
        "route_id": busy["listing"],
        "name": "list-orders",
        "requests": 100,
        "errors_5xx": 6,
        "errors_4xx": 4,
        "error_rate_percent": 10.0,
    }

    quota = body["quota"]
    assert quota["calls"] == 1123 and quota["included_calls"] > 0  # the whole period, billed
    assert quota["used_percent"] == round(100 * 1123 / quota["included_calls"], 2)
    assert datetime.fromisoformat(quota["period_start"]) <= NOW < datetime.fromisoformat(quota["period_end"])
    assert quota["exceeded"] is False and "cost" not in json.dumps(quota)

    changes = body["recent_changes"]
    assert [c["version"] for c in changes] == [5, 4, 3, 2, 1]
    assert {c["actor"] for c in changes} == {cw.world.a.user(Role.DEVELOPER).email}
    assert changes[0]["target"].startswith("route.delete")


def test_organization_overview_by_role(cw, busy):
    slug = cw.world.a.org.slug
    url = f"/api/v1/orgs/{slug}/overview/"
    cw.world.a.client(Role.OWNER).patch(f"/api/v1/orgs/{slug}/", {"name": "Renamed"}, format="json")
    # A sign-in afterwards is in the audit log, and no change to the organization.
    owner_email = cw.world.a.user(Role.OWNER).email
    signed_in = Client().post(
        "/api/v1/auth/login/", {"email": owner_email, "password": PASSWORD}, "application/json"
    )
    assert signed_in.status_code == 200, signed_in.content

    owner = cw.world.a.client(Role.OWNER).get(url).json()
    assert owner["clusters"] == [{"id": cw.cluster_id, "name": "production", "latest_version": 5}]
    assert owner["gateways"]["total"] == 3 and owner["gateways"]["online"] == 1
    assert owner["traffic"]["requests"] == 123
    assert owner["top_failing_routes"][0]["name"] == "list-orders"
    assert owner["quota"]["calls"] == 1123
    actions = [c["action"] for c in owner["recent_changes"]]
    assert actions[0] == "organization.update" and "cluster_token.create" in actions
    assert owner["recent_changes"][0]["actor"] == cw.world.a.user(Role.OWNER).email

    viewer = cw.world.a.client(Role.VIEWER).get(url).json()
    assert viewer["gateways"] == owner["gateways"] and viewer["quota"]["calls"] == 1123
    viewer_actions = [c["action"] for c in viewer["recent_changes"]]
    assert "organization.update" not in viewer_actions and "cluster_token.create" not in viewer_actions
    assert viewer_actions[0] == "route.delete"

    billing = cw.world.a.client(Role.BILLING).get(url)
    assert billing.status_code == 200
    assert billing.json() | {"generated_at": None, "quota": None} == {
        "generated_at": None,
        "clusters": None,
        "gateways": None,
        "traffic": None,
        "top_failing_routes": None,
        "quota": None,
        "recent_changes": None,
    }
    assert billing.json()["quota"]["calls"] == 1123
    assert cw.world.a.client(Role.BILLING).get(cw.url("overview/")).status_code == 403


def test_overview_of_an_empty_organization_and_isolation(cw):
    body = cw.client(Role.VIEWER).get(cw.url("overview/")).json()
    assert body["gateways"] == {
        "total": 0,
        "online": 0,
        "lost": 0,
        "offline": 0,
        "on_latest_version": 0,
        "outdated": 0,
    }
    assert body["traffic"]["requests"] == 0 and body["traffic"]["error_rate_5xx_percent"] is None
    assert len(body["traffic"]["series"]) == 60 and body["top_failing_routes"] == []
    assert body["recent_changes"] == [] and body["cluster"]["latest_version"] is None
    # B's members do not see A's.
    b_owner = cw.world.b.client(Role.OWNER)
    assert b_owner.get(f"/api/v1/orgs/{cw.world.a.org.slug}/overview/").status_code == 404
    assert (
        b_owner.get(f"/api/v1/orgs/{cw.world.a.org.slug}/clusters/{cw.cluster_id}/overview/").status_code
        == 404
    )
    assert b_owner.get(cw.url("overview/", side="b", cluster_id=999)).status_code == 404
    assert cw.client(Role.VIEWER).post(cw.url("overview/")).status_code == 405
