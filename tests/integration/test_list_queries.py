"""Server-side search, sort and pagination: one way on every list of the console's objects.
`?search=` over the fields that name the object, `?ordering=field` / `-field` over an allow-list
(anything else: 400 naming `ordering`), `?page=` / `?page_size=` answered as
{count, next, previous, results}."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import AuditEntry
from tenants.roles import Role
from tests.factories import build_catalog, self_signed_certificate

# --- every list, from the OpenAPI document ----------------------------------------------------


def _list_operations(client: APIClient) -> list[tuple[str, dict]]:
    document = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    return [
        (path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method == "get" and any(p["name"] == "ordering" for p in operation.get("parameters", []))
    ]


@pytest.fixture
def catalog_world(cw):
    """One object of every kind in cluster A, so each ordering sorts real rows."""
    owner = cw.client(Role.OWNER)
    made = build_catalog(owner, cw.url)
    consumer = owner.post(cw.url("consumers/"), {"username": "mobile"}, format="json").json()
    owner.post(cw.url(f"consumers/{consumer['id']}/credentials/"), {"type": "key-auth"}, format="json")
    certificate, key = self_signed_certificate("api.example.com")
    owner.post(
        cw.url("certificates/"),
        {"name": "api", "certificate": certificate, "private_key": key},
        format="json",
    )
    owner.put(cw.url("plugins/cors/"), {"allow_origins": ["*"]}, format="json")
    owner.post(cw.url("tokens/"), {"name": "gw"}, format="json")
    owner.post(f"/api/v1/orgs/{cw.world.a.org.slug}/tokens/", {"name": "ci"}, format="json")
    owner.post(
        f"/api/v1/orgs/{cw.world.a.org.slug}/invitations/",
        {"email": "new@example.com", "role": "viewer"},
        format="json",
    )
    return {**made, "consumer": consumer}


def test_every_list_takes_every_documented_ordering_and_refuses_others(cw, catalog_world):
    owner = cw.client(Role.OWNER)
    real = {
        "{org_slug}": cw.world.a.org.slug,
        "{cluster_id}": str(cw.cluster_id),
        "{consumer_id}": str(catalog_world["consumer"]["id"]),
    }
    operations = _list_operations(owner)
    paths = {path for path, _ in operations}
    for expected in (
        "upstreams/",
        "services/",
        "routes/",
        "consumers/",
        "credentials/",
        "certificates/",
        "plugins/",
        "instances/",
        "snapshots/",
        "{cluster_id}/tokens/",
        "{org_slug}/clusters/",
        "members/",
        "invitations/",
        "{org_slug}/tokens/",
        "audit-log/",
    ):
        assert any(path.endswith(expected) for path in paths), (expected, sorted(paths))

    for path, operation in operations:
        url = path
        for placeholder, value in real.items():
            url = url.replace(placeholder, value)
        [ordering] = [p for p in operation["parameters"] if p["name"] == "ordering"]
        paginated = any(p["name"] == "page" for p in operation["parameters"])
        for value in ordering["schema"]["enum"]:
            response = owner.get(url, {"ordering": value})
            assert response.status_code == 200, (url, value, response.content[:300])
            body = response.json()
            if paginated:
                assert set(body) == {"count", "next", "previous", "results"}, url
                assert body["count"] >= len(body["results"])
            else:  # the global plugins: name -> config, a cluster has one of each
                assert url.endswith("/plugins/") and body == {"cors": {"allow_origins": ["*"]}}
        refused = owner.get(url, {"ordering": "password"})
        assert refused.status_code == 400, (url, refused.content[:300])
        assert "ordering" in refused.json()["errors"] and refused.json()["detail"]
        if any(p["name"] == "search" for p in operation["parameters"]):
            for term in ("%", "_", "\\", "'; drop table", "é", "x" * 200):
                assert owner.get(url, {"search": term}).status_code == 200, (url, term)
            for term in ("a\x00b", "x" * 201):
                bad = owner.get(url, {"search": term})
                assert bad.status_code == 400 and "search" in bad.json()["errors"], (url, term)
        if not paginated:
            continue
        for name, value in (("page", "0"), ("page", "two"), ("page_size", "0"), ("page_size", "201")):
            bad = owner.get(url, {name: value})
            assert bad.status_code == 400 and name in bad.json()["errors"], (url, name, value)
        assert owner.get(url, {"page": "999"}).status_code == 404, url


# --- search, sort and pages on real objects ---------------------------------------------------


def test_catalog_lists_search_sort_and_paginate(cw):
    client = cw.client(Role.DEVELOPER)
    for name in ("beta", "Alpha", "gamma-beta"):
        body = {"name": name, "targets": [{"host": "10.0.0.1", "port": 80}]}
        assert client.post(cw.url("upstreams/"), body, format="json").status_code == 201
    names = lambda query: [u["name"] for u in client.get(cw.url(f"upstreams/{query}")).json()["results"]]  # noqa: E731
    assert names("") == ["beta", "Alpha", "gamma-beta"]  # by id, as before
    assert names("?ordering=name") == ["Alpha", "beta", "gamma-beta"]
    assert names("?ordering=-name") == ["gamma-beta", "beta", "Alpha"]
    assert names("?search=BETA&ordering=name") == ["beta", "gamma-beta"]
    assert names("?search=nothing") == []

    first = client.get(cw.url("upstreams/?ordering=name&page_size=2")).json()
    assert first["count"] == 3 and [u["name"] for u in first["results"]] == ["Alpha", "beta"]
    assert first["next"] and first["previous"] is None
    second = client.get(first["next"]).json()
    assert [u["name"] for u in second["results"]] == ["gamma-beta"] and second["next"] is None

    for service, upstream in (("orders-api", "beta"), ("billing-api", "Alpha")):
        client.post(cw.url("services/"), {"name": service, "upstream": upstream}, format="json")
    for name, service, path, priority in (
        ("list-orders", "orders-api", "/orders", 5),
        ("invoices", "billing-api", "/invoices", 10),
        ("order-items", "orders-api", "/items", 0),
    ):
        route = {"name": name, "service": service, "paths": [{"value": path}], "priority": priority}
        assert client.post(cw.url("routes/"), route, format="json").status_code == 201
    routes = lambda query: [r["name"] for r in client.get(cw.url(f"routes/{query}")).json()["results"]]  # noqa: E731
    assert routes("?search=/invoices") == ["invoices"]  # by path
    assert routes("?search=orders-api&ordering=name") == ["list-orders", "order-items"]  # by service
    assert routes("?ordering=-priority") == ["invoices", "list-orders", "order-items"]
    services = [s["name"] for s in client.get(cw.url("services/?ordering=upstream")).json()["results"]]
    assert services == ["billing-api", "orders-api"]
    assert [s["name"] for s in client.get(cw.url("services/?search=alpha")).json()["results"]] == [
        "billing-api"
    ]


def test_consumers_credentials_certificates_and_global_plugins(cw):
    client = cw.client(Role.DEVELOPER)
    ids = {}
    for username in ("web", "mobile-ios", "mobile-android"):
        ids[username] = client.post(cw.url("consumers/"), {"username": username}, format="json").json()["id"]
    consumers = client.get(cw.url("consumers/?search=mobile&ordering=username")).json()
    assert [c["username"] for c in consumers["results"]] == ["mobile-android", "mobile-ios"]

    credentials = cw.url(f"consumers/{ids['web']}/credentials/")
    client.post(credentials, {"type": "key-auth"}, format="json")
    client.post(
        credentials, {"type": "basic-auth", "username": "webapp", "password": "s3cret-pass"}, format="json"
    )
    found = client.get(f"{credentials}?search=webapp").json()
    assert [c["type"] for c in found["results"]] == ["basic-auth"] and found["count"] == 1
    assert [c["type"] for c in client.get(f"{credentials}?ordering=type").json()["results"]] == [
        "basic-auth",
        "key-auth",
    ]

    for name, host in (("main", "api.example.com"), ("legacy", "old.example.net")):
        certificate, key = self_signed_certificate(host)
        body = {"name": name, "certificate": certificate, "private_key": key}
        assert client.post(cw.url("certificates/"), body, format="json").status_code == 201
    by_sni = client.get(cw.url("certificates/?search=example.net")).json()["results"]
    assert [c["name"] for c in by_sni] == ["legacy"]

    client.put(cw.url("plugins/cors/"), {"allow_origins": ["*"]}, format="json")
    assert (
        client.put(
            cw.url("plugins/ip-restriction/"), {"allowlist": ["10.0.0.0/8"]}, format="json"
        ).status_code
        == 200
    )
    # The global plugins stay an object, name -> config (the console reads it so), in order.
    assert list(client.get(cw.url("plugins/")).json()) == ["cors", "ip-restriction"]
    assert list(client.get(cw.url("plugins/?ordering=-name")).json()) == ["ip-restriction", "cors"]
    assert client.get(cw.url("plugins/?search=ip-")).json() == {
        "ip-restriction": {"allowlist": ["10.0.0.0/8"]}
    }
    assert client.get(cw.url("plugins/?ordering=config")).status_code == 400


def test_clusters_and_snapshots(cw):
    admin = cw.client(Role.ADMIN)
    base = f"/api/v1/orgs/{cw.world.a.org.slug}/clusters/"
    admin.post(base, {"name": "staging", "description": "pre-production"}, format="json")
    admin.post(base, {"name": "edge-eu"}, format="json")
    assert [c["name"] for c in admin.get(f"{base}?ordering=name").json()["results"]] == [
        "edge-eu",
        "production",
        "staging",
    ]
    assert [c["name"] for c in admin.get(f"{base}?search=PRE-prod").json()["results"]] == ["staging"]

    build_catalog(cw.client(Role.DEVELOPER), cw.url)
    history = cw.client(Role.VIEWER).get(cw.url("snapshots/")).json()
    assert [s["version"] for s in history["results"]] == [3, 2, 1]  # newest first, as before
    oldest = cw.client(Role.VIEWER).get(cw.url("snapshots/?ordering=version&page_size=1")).json()
    assert oldest["count"] == 3 and oldest["results"][0]["version"] == 1
    routes = cw.client(Role.VIEWER).get(cw.url("snapshots/?search=route.create")).json()["results"]
    assert [s["version"] for s in routes] == [3]


def test_members_show_their_email_and_are_searched_and_sorted(world):
    slug = world.a.org.slug
    client = world.a.client(Role.VIEWER)
    members = client.get(f"/api/v1/orgs/{slug}/members/").json()
    assert members["count"] == 5
    for member in members["results"]:
        assert member["email"] == member["user"]["email"] and "name" in member
    admin_email = world.a.user(Role.ADMIN).email
    found = client.get(f"/api/v1/orgs/{slug}/members/", {"search": admin_email.upper()}).json()
    assert [m["email"] for m in found["results"]] == [admin_email]
    by_email = client.get(f"/api/v1/orgs/{slug}/members/?ordering=-email").json()["results"]
    assert [m["email"] for m in by_email] == sorted((m["email"] for m in by_email), reverse=True)
    by_role = client.get(f"/api/v1/orgs/{slug}/members/?ordering=role").json()["results"]
    assert [m["role"] for m in by_role] == sorted(m["role"] for m in by_role)


def test_invitations_and_api_tokens(world):
    slug = world.a.org.slug
    admin = world.a.client(Role.ADMIN)
    for email in ("zoe@example.com", "adam@example.com", "zed@other.example"):
        admin.post(f"/api/v1/orgs/{slug}/invitations/", {"email": email, "role": "viewer"}, format="json")
    found = admin.get(f"/api/v1/orgs/{slug}/invitations/?search=example.com&ordering=email").json()
    assert [i["email"] for i in found["results"]] == ["adam@example.com", "zoe@example.com"]
    pending = admin.get(f"/api/v1/orgs/{slug}/invitations/?status=pending&page_size=1").json()
    assert pending["count"] == 3 and len(pending["results"]) == 1

    for name in ("deploy", "ci-read", "ci-write"):
        admin.post(f"/api/v1/orgs/{slug}/tokens/", {"name": name}, format="json")
    tokens = admin.get(f"/api/v1/orgs/{slug}/tokens/?search=ci-&ordering=name").json()["results"]
    assert [t["name"] for t in tokens] == ["ci-read", "ci-write"]
    assert [t["name"] for t in admin.get(f"/api/v1/orgs/{slug}/tokens/").json()["results"]] == [
        "ci-write",
        "ci-read",
        "deploy",
    ]


def test_audit_log_filters_by_action_family_actor_and_time_range(world):
    slug = world.a.org.slug
    owner = world.a.client(Role.OWNER)
    base = f"/api/v1/orgs/{slug}/audit-log/"
    owner.patch(f"/api/v1/orgs/{slug}/", {"name": "Renamed"}, format="json")
    world.a.client(Role.ADMIN).post(
        f"/api/v1/orgs/{slug}/invitations/", {"email": "x@example.com", "role": "viewer"}, format="json"
    )
    world.a.client(Role.ADMIN).post(f"/api/v1/orgs/{slug}/tokens/", {"name": "bot"}, format="json")
    old = AuditEntry.objects.filter(organization=world.a.org, action="organization.update").get()
    AuditEntry.objects.filter(id=old.id).update(created_at=timezone.now() - timedelta(days=3))

    family = owner.get(f"{base}?action=invitation.*").json()["results"]
    assert [e["action"] for e in family] == ["invitation.create"]
    exact = owner.get(f"{base}?action=api_token.create").json()["results"]
    assert [e["actor"] for e in exact] == [world.a.user(Role.ADMIN).email]
    since = (timezone.now() - timedelta(days=1)).isoformat()
    recent = owner.get(base, {"since": since}).json()["results"]
    assert {e["action"] for e in recent} == {"organization.create", "invitation.create", "api_token.create"}
    until = owner.get(base, {"until": since}).json()["results"]
    assert [e["action"] for e in until] == ["organization.update"]
    assert owner.get(base, {"since": since, "until": since}).status_code == 400
    searched = owner.get(base, {"search": "x@example"}).json()["results"]
    assert [e["action"] for e in searched] == ["invitation.create"]
    oldest_first = owner.get(f"{base}?ordering=created_at").json()["results"]
    assert oldest_first[0]["action"] == "organization.update"
    refused = owner.get(f"{base}?ordering=changes")
    assert refused.status_code == 400 and "ordering" in refused.json()["errors"]


def test_api_tokens_default_to_the_lowest_ceiling_and_take_one_up_to_the_role(world):
    slug = world.a.org.slug
    url = f"/api/v1/orgs/{slug}/tokens/"
    owner = world.a.client(Role.OWNER)
    assert owner.post(url, {"name": "default"}, format="json").json()["role_ceiling"] == "viewer"
    explicit = owner.post(
        url,
        {"name": "deploy", "role_ceiling": "developer", "expires_at": "2999-01-01T00:00:00Z"},
        format="json",
    ).json()
    assert explicit["role_ceiling"] == "developer" and explicit["expires_at"].startswith("2999-01-01")
    billing = world.a.client(Role.BILLING).post(url, {"name": "invoices"}, format="json")
    assert billing.status_code == 201 and billing.json()["role_ceiling"] == "billing"
    too_high = world.a.client(Role.DEVELOPER).post(url, {"name": "x", "role_ceiling": "admin"}, format="json")
    assert too_high.status_code == 400 and "role_ceiling" in too_high.json()["errors"]

    viewer_token = APIClient(
        HTTP_AUTHORIZATION=f"Bearer {owner.post(url, {'name': 'r'}, format='json').json()['token']}"
    )
    assert viewer_token.get(f"/api/v1/orgs/{slug}/members/").status_code == 200
    assert viewer_token.patch(f"/api/v1/orgs/{slug}/", {"name": "x"}, format="json").status_code == 403
    entry = AuditEntry.objects.filter(organization=world.a.org, action="api_token.create").first()
    assert entry is not None and entry.changes["after"]["role_ceiling"] in {"viewer", "developer", "billing"}
