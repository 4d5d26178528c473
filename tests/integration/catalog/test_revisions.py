"""Edits that lose nothing: every catalog entity carries a revision (its ETag); PATCH changes only
the fields it names; a write naming an older revision (If-Match) is refused with 412, who changed
it and when, and changes nothing; a declarative plan that went stale is refused the same way."""

import pytest

from tenants.roles import Role
from tests.factories import build_catalog

pytestmark = pytest.mark.django_db

FULL_ROUTE = {
    "name": "orders-exact",
    "service": "orders-api",
    "hosts": ["api.example.com", "*.shop.example.com"],
    "paths": [{"type": "exact", "value": "/orders/list"}],
    "methods": ["GET", "POST"],
    "headers": [{"name": "X-Tenant", "value": "acme", "type": "exact"}],
    "priority": 5,
    "strip_path_prefix": "/orders",
    "plugins": {"limit-count": {"count": 10, "time_window": 60}},
}
FULL_UPSTREAM = {
    "name": "billing",
    "targets": [{"host": "10.0.0.7", "port": 9000, "weight": 30}],
    "load_balancing": "leastconn",
    "retries": 3,
    "timeouts": {"connect_s": 2, "send_s": 7, "read_s": 45},
}


def _fields(body: dict, like: dict) -> dict:
    return {key: body[key] for key in like}


def test_patch_changes_only_the_fields_it_names(cw):
    client = cw.client()
    build_catalog(client, cw.url)
    for kind, full, rename in (
        ("routes", FULL_ROUTE, {"name": "orders-exact-2"}),
        ("upstreams", FULL_UPSTREAM, {"name": "billing-2"}),
    ):
        made = client.post(cw.url(f"{kind}/"), full, format="json")
        assert made.status_code == 201, made.content
        before = made.json()
        changed = client.patch(cw.url(f"{kind}/{before['id']}/"), rename, format="json")
        assert changed.status_code == 200, changed.content
        after = client.get(cw.url(f"{kind}/{before['id']}/")).json()
        assert after["name"] == rename["name"]
        untouched = [key for key in before if key not in ("name", "revision", "updated_at")]
        assert _fields(after, untouched) == _fields(before, untouched)
        assert after["revision"] == before["revision"] + 1


def test_a_write_naming_an_older_revision_is_refused_and_changes_nothing(cw, world):
    build_catalog(cw.client(), cw.url)
    alice, bob = cw.client(Role.DEVELOPER), cw.client(Role.ADMIN)
    route = alice.get(cw.url("routes/")).json()["results"][0]
    read = alice.get(cw.url(f"routes/{route['id']}/"))
    etag = read["ETag"]
    assert etag == f'"{read.json()["revision"]}"'

    # Bob changes the route first, from the same revision.
    first = bob.patch(cw.url(f"routes/{route['id']}/"), {"priority": 3}, format="json", HTTP_IF_MATCH=etag)
    assert first.status_code == 200 and first["ETag"] == f'"{read.json()["revision"] + 1}"'

    # Alice's save names the revision she read: refused, with who changed it and when.
    for method, body in (
        ("put", {**read.json(), "priority": 9}),
        ("patch", {"priority": 9}),
        ("delete", None),
    ):
        if method == "put":
            body = {
                k: v
                for k, v in body.items()
                if k not in ("id", "revision", "updated_by", "created_at", "updated_at")
            }
        stale = getattr(alice, method)(
            cw.url(f"routes/{route['id']}/"), body, format="json", HTTP_IF_MATCH=etag
        )
        assert stale.status_code == 412, (method, stale.content)
        answer = stale.json()
        assert answer["current_revision"] == first.json()["revision"]
        assert answer["updated_by"] == world.a.user(Role.ADMIN).email and answer["updated_at"]
        assert world.a.user(Role.ADMIN).email in answer["detail"]
    now = alice.get(cw.url(f"routes/{route['id']}/")).json()
    assert now["priority"] == 3 and now["revision"] == first.json()["revision"]

    # Reloaded, her change goes through; a malformed If-Match is bad input, not a mismatch.
    retry = alice.patch(
        cw.url(f"routes/{route['id']}/"),
        {"priority": 9},
        format="json",
        HTTP_IF_MATCH=f'W/"{now["revision"]}"',
    )
    assert retry.status_code == 200 and retry.json()["priority"] == 9
    bad = alice.patch(
        cw.url(f"routes/{route['id']}/"), {"priority": 1}, format="json", HTTP_IF_MATCH="yesterday"
    )
    assert bad.status_code == 400 and "If-Match" in bad.json()["errors"]


def test_global_plugins_carry_a_revision_too(cw):
    client = cw.client()
    url = cw.url("plugins/cors/")
    made = client.put(url, {"allow_origins": ["https://a.example.com"]}, format="json")
    assert made.status_code == 200 and made.json()["revision"] == 1
    read = client.get(url)
    assert read.status_code == 200 and read["ETag"] == '"1"'
    assert client.put(url, {"allow_origins": ["*"]}, format="json", HTTP_IF_MATCH='"1"').status_code == 200
    stale = client.put(url, {"allow_origins": ["https://b.example.com"]}, format="json", HTTP_IF_MATCH='"1"')
    assert stale.status_code == 412 and stale.json()["current_revision"] == 2
    assert client.get(cw.url("plugins/")).json() == {"cors": {"allow_origins": ["*"]}}


def test_a_declarative_plan_that_went_stale_is_refused(cw):
    client = cw.client()
    build_catalog(client, cw.url)
    document = client.get(cw.url("config/?format=json")).json()
    document["routes"][0]["priority"] = 4
    plan = client.post(cw.url("config/?dry_run=true"), document, format="json").json()
    assert plan["plan"] and plan["based_on_version"]

    # A colleague publishes meanwhile: applying the plan would undo it unseen.
    client.post(
        cw.url("upstreams/"), {"name": "spare", "targets": [{"host": "10.0.0.9", "port": 80}]}, format="json"
    )
    stale = client.post(
        cw.url("config/"), document, format="json", HTTP_IF_MATCH=f'"{plan["based_on_version"]}"'
    )
    assert stale.status_code == 412 and stale.json()["current_revision"] == plan["based_on_version"] + 1
    assert [u["name"] for u in client.get(cw.url("upstreams/")).json()["results"]] == ["orders", "spare"]

    # Planned again, it applies (and now removes the spare upstream, which the plan shows).
    again = client.post(cw.url("config/?dry_run=true"), document, format="json").json()
    applied = client.post(
        cw.url("config/"), document, format="json", HTTP_IF_MATCH=f'"{again["based_on_version"]}"'
    )
    assert applied.status_code == 200 and applied.json()["plan"] == again["plan"]
