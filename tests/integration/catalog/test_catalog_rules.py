"""Bad input, conflicting routes, tenant isolation and roles for the catalog."""

import pytest
from django_tenants.utils import schema_context

from saas.catalog.models import Route, Upstream
from saas.gateways.models import ConfigSnapshot
from tenants.roles import Role
from tests.factories import SERVICE, UPSTREAM, build_catalog

BAD = [
    ("upstreams/", {**UPSTREAM, "targets": [{"host": "10.0.0.1", "port": 0}]}, "targets.0.port"),
    ("upstreams/", {**UPSTREAM, "targets": [{"host": "10.0.0.1", "port": 70000}]}, "targets.0.port"),
    ("upstreams/", {**UPSTREAM, "targets": [{"host": "bad host", "port": 80}]}, "targets.0.host"),
    ("upstreams/", {**UPSTREAM, "targets": []}, "targets"),
    ("upstreams/", {**UPSTREAM, "targets": [{"host": "a", "port": "80"}]}, "targets.0.port"),
    ("upstreams/", {**UPSTREAM, "load_balancing": "hash_header"}, "hash_header"),
    ("upstreams/", {**UPSTREAM, "load_balancing": "random"}, "load_balancing"),
    ("upstreams/", {**UPSTREAM, "tls_verify": True}, "scheme"),
    ("upstreams/", {**UPSTREAM, "colour": "red"}, "colour"),
    ("upstreams/", {**UPSTREAM, "name": ""}, "name"),
    ("upstreams/", {**UPSTREAM, "name": "x" * 101}, "name"),
    ("upstreams/", {**UPSTREAM, "retries": 11}, "retries"),
    ("upstreams/", {**UPSTREAM, "active_health_check": {"path": "no-slash"}}, "active_health_check.path"),
    ("upstreams/", ["not", "an", "object"], "non_field_errors"),
    ("services/", {**SERVICE, "name": "s2", "upstream": "missing"}, "upstream"),
    ("services/", {"name": "s"}, "upstream"),
    ("routes/", {"name": "r", "service": "missing", "paths": [{"value": "/a"}]}, "service"),
    (
        "routes/",
        {"name": "r", "service": "orders-api", "paths": [{"type": "regex", "value": "(unclosed"}]},
        "paths.0.value",
    ),
    ("routes/", {"name": "r", "service": "orders-api", "paths": [{"value": "no-slash"}]}, "paths.0.value"),
    ("routes/", {"name": "r", "service": "orders-api", "paths": []}, "paths"),
    (
        "routes/",
        {"name": "r", "service": "orders-api", "paths": [{"value": "/a"}], "methods": ["FETCH"]},
        "methods.0",
    ),
    (
        "routes/",
        {"name": "r", "service": "orders-api", "paths": [{"value": "/a"}], "hosts": ["bad host"]},
        "hosts",
    ),
    (
        "routes/",
        {"name": "r", "service": "orders-api", "paths": [{"value": "/a"}], "priority": "high"},
        "priority",
    ),
    (
        "routes/",
        {
            "name": "r",
            "service": "orders-api",
            "paths": [{"value": "/a"}],
            "headers": [{"name": "bad header", "value": "x"}],
        },
        "headers.0.name",
    ),
    ("consumers/", {"username": "has space"}, "username"),
    ("consumers/", {"username": "ok", "labels": {"a": 1}}, "labels.a"),
    ("certificates/", {"name": "c", "certificate": "x"}, "private_key"),
]


@pytest.mark.parametrize(("path", "body", "field"), BAD)
def test_bad_input_is_400_naming_the_field_and_publishes_nothing(cw, path, body, field):
    client = cw.client()
    build_catalog(client, cw.url)
    with schema_context(cw.world.a.org.schema_name):
        before = ConfigSnapshot.objects.count()
    response = client.post(cw.url(path), body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    with schema_context(cw.world.a.org.schema_name):
        assert ConfigSnapshot.objects.count() == before


def test_duplicate_names_are_refused(cw):
    client = cw.client()
    build_catalog(client, cw.url)
    for path, body, field in (
        ("upstreams/", UPSTREAM, "name"),
        ("services/", SERVICE, "name"),
    ):
        response = client.post(cw.url(path), body, format="json")
        assert response.status_code == 400
        assert "already exists" in response.json()["errors"][field][0]
    client.post(cw.url("consumers/"), {"username": "dup"}, format="json")
    assert client.post(cw.url("consumers/"), {"username": "dup"}, format="json").status_code == 400


def test_conflicting_routes_are_refused_with_the_others_name(cw):
    client = cw.client()
    build_catalog(client, cw.url)  # list-orders: GET /orders (prefix), any host, priority 0
    base = {"service": "orders-api", "paths": [{"type": "prefix", "value": "/orders"}]}
    same = client.post(cw.url("routes/"), {**base, "name": "twin", "methods": ["GET", "POST"]}, format="json")
    assert same.status_code == 400
    assert "'list-orders'" in same.json()["detail"]
    for distinct in (
        {"name": "post-only", "methods": ["POST"]},
        {"name": "other-priority", "methods": ["GET"], "priority": 1},
        {"name": "with-header", "methods": ["GET"], "headers": [{"name": "X-Beta", "value": "1"}]},
        {"name": "other-path", "methods": ["GET"], "paths": [{"type": "exact", "value": "/orders"}]},
    ):
        response = client.post(cw.url("routes/"), {**base, **distinct}, format="json")
        assert response.status_code == 201, (distinct, response.content)
    # Hosts: a wildcard overlaps a concrete host under it.
    hosted = {**base, "paths": [{"type": "prefix", "value": "/h"}]}
    assert (
        client.post(
            cw.url("routes/"), {**hosted, "name": "h1", "hosts": ["*.example.com"]}, format="json"
        ).status_code
        == 201
    )
    clash = client.post(
        cw.url("routes/"), {**hosted, "name": "h2", "hosts": ["api.example.com"]}, format="json"
    )
    assert clash.status_code == 400
    assert (
        client.post(
            cw.url("routes/"), {**hosted, "name": "h3", "hosts": ["api.example.org"]}, format="json"
        ).status_code
        == 201
    )


def test_another_orgs_cluster_is_out_of_reach(cw):
    made = build_catalog(cw.client(), cw.url)
    b_client = cw.world.b.client(Role.OWNER)
    # A's cluster through A's slug: not a member.
    assert b_client.get(cw.url("routes/")).status_code == 404
    assert b_client.post(cw.url("upstreams/"), UPSTREAM, format="json").status_code == 404
    # B's own slug with A's cluster id: B's schema has its own cluster 1, with nothing of A in it.
    listed = b_client.get(cw.url("routes/", side="b", cluster_id=cw.cluster_id)).json()
    assert listed["count"] == 0
    assert b_client.get(cw.url(f"routes/{made['routes']['id']}/", side="b")).status_code == 404
    assert b_client.delete(cw.url(f"upstreams/{made['upstreams']['id']}/", side="b")).status_code == 404
    assert b_client.get(cw.url("", side="b", cluster_id=999)).status_code == 404
    with schema_context(cw.world.a.org.schema_name):
        assert Route.objects.count() == 1 and Upstream.objects.count() == 1


@pytest.mark.parametrize(
    ("role", "read", "write", "manage"),
    [
        (Role.OWNER, 200, 201, 201),
        (Role.ADMIN, 200, 201, 201),
        (Role.DEVELOPER, 200, 201, 403),
        (Role.VIEWER, 200, 403, 403),
        (Role.BILLING, 403, 403, 403),
    ],
)
def test_roles_viewers_read_developers_edit_admins_manage_clusters(cw, role, read, write, manage):
    client = cw.client(role)
    assert client.get(cw.url("upstreams/")).status_code == read
    assert client.get(cw.url("snapshots/")).status_code == read
    assert client.post(cw.url("upstreams/"), UPSTREAM, format="json").status_code == write
    slug = cw.world.a.org.slug
    assert (
        client.post(f"/api/v1/orgs/{slug}/clusters/", {"name": f"staging-{role}"}, format="json").status_code
        == manage
    )
    assert client.post(cw.url("tokens/"), {"name": "gw"}, format="json").status_code == manage


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"paths": [{"value": "/a\n    http-request deny"}]}, "paths.0.value"),
        (
            {"paths": [{"value": "/a"}], "headers": [{"name": "X-A", "value": "1\nhttp-request deny"}]},
            "headers.0.value",
        ),
        (
            {
                "paths": [{"value": "/a"}],
                "plugins": {"proxy-rewrite": {"headers": {"set": {"X-A": "1\r\nX-B: 2"}}}},
            },
            "plugins.proxy-rewrite",
        ),
        ({"paths": [{"type": "regex", "value": "^/\\N{LATIN SMALL LETTER A}$"}]}, "paths.0.value"),
    ],
)
def test_nothing_can_inject_into_the_gateway_configuration(cw, body, field):
    client = cw.client()
    build_catalog(client, cw.url)
    response = client.post(
        cw.url("routes/"), {"name": "evil", "service": "orders-api", **body}, format="json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
