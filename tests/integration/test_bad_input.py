"""Bad input gets 400 with {"detail", "errors": {field: [...]}} and changes nothing; no request
a client can send yields a 500."""

import pytest
from rest_framework.test import APIClient

from tenants.models import ApiToken, AuditEntry, Invitation, Membership, Organization, User
from tenants.roles import Role
from tests.agent_api import call_agent_api, register_gateway

LONG = "x" * 300


def _snapshot():
    return tuple(
        m.objects.count() for m in (User, Organization, Membership, Invitation, ApiToken, AuditEntry)
    )


CASES = [
    # (path below /api/v1 with {slug}, method, body, field expected in errors or None)
    ("/auth/signup/", "post", {"password": "a long passphrase"}, "email"),
    ("/auth/signup/", "post", {"email": "not-an-email", "password": "a long passphrase"}, "email"),
    ("/auth/signup/", "post", {"email": 12, "password": "a long passphrase"}, "email"),
    ("/auth/signup/", "post", {"email": "a@example.com", "password": 12345678901}, "password"),
    (
        "/auth/signup/",
        "post",
        {"email": "a@example.com", "password": "a long passphrase", "admin": True},
        "admin",
    ),
    (
        "/auth/signup/",
        "post",
        {"email": "a@example.com", "password": "a long passphrase", "name": LONG},
        "name",
    ),
    (
        "/auth/signup/",
        "post",
        {"email": "a@example.com", "password": "a long passphrase", "organization_name": LONG},
        "organization_name",
    ),
    (
        "/auth/signup/",
        "post",
        {"email": "a@example.com", "password": "a long passphrase", "name": "nul\x00byte"},
        "name",
    ),
    ("/auth/signup/", "post", {"email": "owner@example.com", "password": "a long passphrase"}, "email"),
    ("/auth/signup/", "post", ["not", "an", "object"], "non_field_errors"),
    ("/auth/login/", "post", {"email": ["x"], "password": "y"}, "email"),
    ("/auth/login/", "post", {}, "email"),
    ("/orgs/", "post", {}, "name"),
    ("/orgs/", "post", {"name": 42}, "name"),
    ("/orgs/", "post", {"name": ""}, "name"),
    ("/orgs/", "post", {"name": LONG}, "name"),
    ("/orgs/", "post", {"name": "Ok", "slug": "Bad Slug!"}, "slug"),
    ("/orgs/", "post", {"name": "Ok", "slug": "-edge-"}, "slug"),
    ("/orgs/", "post", {"name": "Ok", "slug": "café"}, "slug"),
    ("/orgs/", "post", {"name": "Ok", "slug": "{slug}"}, "slug"),
    ("/orgs/", "post", {"name": "Ok", "plan": "free"}, "plan"),
    ("/orgs/{slug}/", "patch", {}, "non_field_errors"),
    ("/orgs/{slug}/", "patch", {"slug": "{other}"}, "slug"),
    ("/orgs/{slug}/", "patch", {"name": None}, "name"),
    ("/orgs/{slug}/invitations/", "post", {"email": "bad", "role": "viewer"}, "email"),
    ("/orgs/{slug}/invitations/", "post", {"email": "ok@example.com", "role": "emperor"}, "role"),
    ("/orgs/{slug}/invitations/", "post", {"email": "ok@example.com"}, "role"),
    ("/orgs/{slug}/invitations/", "post", {"email": "ok@example.com", "role": "viewer", "x": 1}, "x"),
    ("/orgs/{slug}/members/{member}/", "patch", {"role": "god"}, "role"),
    ("/orgs/{slug}/members/{member}/", "patch", {}, "role"),
    ("/orgs/{slug}/tokens/", "post", {}, "name"),
    ("/orgs/{slug}/tokens/", "post", {"name": LONG}, "name"),
    ("/orgs/{slug}/tokens/", "post", {"name": "t", "role_ceiling": "root"}, "role_ceiling"),
    ("/orgs/{slug}/tokens/", "post", {"name": "t", "expires_at": "tomorrow"}, "expires_at"),
    ("/orgs/{slug}/tokens/", "post", {"name": "t", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ("/invitations/accept/", "post", {}, "token"),
    ("/invitations/accept/", "post", {"token": 5}, "token"),
    ("/invitations/lookup/", "post", {"token": LONG}, "token"),
]


@pytest.mark.parametrize(("path", "method", "body", "field"), CASES)
def test_bad_input_is_400_with_field_and_changes_nothing(world, path, method, body, field):
    owner = world.a.client(Role.OWNER)
    User.objects.create_user(email="owner@example.com", password="x")
    path = path.format(slug=world.a.org.slug, other=world.b.org.slug, member=world.a.members[Role.VIEWER].id)
    if isinstance(body, dict):
        body = {
            k: (
                v.format(slug=world.a.org.slug, other=world.b.org.slug)
                if isinstance(v, str) and "{" in v
                else v
            )
            for k, v in body.items()
        }
    before = _snapshot()
    client = owner if "/orgs/" in path else APIClient()
    response = getattr(client, method)(f"/api/v1{path}", body, format="json")
    assert response.status_code == 400, response.content
    data = response.json()
    assert isinstance(data["detail"], str) and data["detail"]
    assert field in data["errors"], data
    assert _snapshot() == before


def test_malformed_json_and_wrong_content_type(world):
    owner = world.a.client(Role.OWNER)
    url = "/api/v1/orgs/"
    malformed = owner.generic("POST", url, b'{"name": ', content_type="application/json")
    assert malformed.status_code == 400
    assert malformed.json()["detail"].startswith("JSON parse error")
    form = owner.post(url, {"name": "Form"})  # multipart: we take JSON only
    assert form.status_code == 415


def test_unknown_ids_and_methods(world):
    owner = world.a.client(Role.OWNER)
    slug = world.a.org.slug
    assert (
        owner.patch(f"/api/v1/orgs/{slug}/members/999999/", {"role": "viewer"}, format="json").status_code
        == 404
    )
    assert (
        owner.patch(f"/api/v1/orgs/{slug}/members/abc/", {"role": "viewer"}, format="json").status_code == 404
    )
    assert owner.put(f"/api/v1/orgs/{slug}/", {"name": "x"}, format="json").status_code == 405
    assert owner.get("/api/v1/nope/").status_code == 404
    assert owner.get("/api/v1/nope/").json() == {"detail": "Not found."}


# --- unsupported methods, malformed ids: one base answers them for every view ----------------

CLUSTER_UNSUPPORTED = [
    ("PUT", "config/"),
    ("DELETE", "config/"),
    ("DELETE", "deployments/"),
    ("PUT", "deployments/"),
    ("PATCH", "snapshots/"),
    ("POST", "snapshots/"),
    ("POST", "plugins/"),
    ("PATCH", "upstreams/"),
    ("PUT", "instances/"),
    ("DELETE", "analytics/"),
    ("TRACE", "config/"),
    ("TRACE", "upstreams/"),
    ("TRACE", ""),
]


@pytest.mark.parametrize(("method", "tail"), CLUSTER_UNSUPPORTED, ids=lambda v: v or "root")
def test_unsupported_methods_on_cluster_endpoints_are_405_with_allow(cw, method, tail):
    owner = cw.client(Role.OWNER)
    response = owner.generic(method, cw.url(tail), b"{}", content_type="application/json")
    assert response.status_code == 405, response.content
    assert response.json() == {"detail": f'Method "{method}" not allowed.'}
    allowed = {m.strip() for m in response["Allow"].split(",")}
    assert method not in allowed and ("GET" in allowed or "POST" in allowed), allowed
    # An outsider still learns nothing: 404 for the organization, before the method.
    outsider = cw.world.b.client(Role.OWNER).generic(
        method, cw.url(tail), b"{}", content_type="application/json"
    )
    assert outsider.status_code == 404


@pytest.mark.parametrize("tail", ["config/", "upstreams/", "deployments/", "snapshots/", ""])
def test_options_on_cluster_endpoints_names_the_methods(cw, tail):
    response = cw.client(Role.OWNER).options(cw.url(tail))
    assert response.status_code == 204, response.content
    assert "GET" in response["Allow"]


def test_unsupported_methods_on_organization_endpoints_are_405(world):
    owner = world.a.client(Role.OWNER)
    slug = world.a.org.slug
    for method, path in [
        ("DELETE", f"/api/v1/orgs/{slug}/"),
        ("PUT", f"/api/v1/orgs/{slug}/members/"),
        ("TRACE", f"/api/v1/orgs/{slug}/tokens/"),
        ("PATCH", f"/api/v1/orgs/{slug}/clusters/"),
    ]:
        response = owner.generic(method, path, b"{}", content_type="application/json")
        assert response.status_code == 405, (method, path, response.content)
        assert "detail" in response.json() and response["Allow"]


@pytest.mark.parametrize("cluster_id", ["²", "١٢", "9" * 30, "-1", "1.0", "abc"])
def test_malformed_or_unknown_cluster_ids_are_404(cw, cluster_id):
    response = cw.client(Role.OWNER).get(cw.url("upstreams/", cluster_id=cluster_id))
    assert response.status_code == 404, response.content
    assert response.json() == {"detail": "Cluster not found."}


@pytest.mark.parametrize("number", ["²", "١٢", "9" * 30])
def test_numbers_in_paths_queries_and_headers_that_are_not_ascii_digits_are_4xx(cw, number):
    """A snapshot version, a consumer id, a revision in If-Match: each is a number the request
    writes as text, and "²".isdigit() is true while int("²") raises."""
    client = cw.client(Role.OWNER)
    diff = client.get(cw.url(f"snapshots/diff/?from={number}&to=1"))
    assert diff.status_code == 400 and "from" in diff.json()["errors"], diff.content
    assert client.get(cw.url(f"consumers/{number}/credentials/")).status_code == 404
    made = client.post(
        cw.url("upstreams/"), {"name": "u", "targets": [{"host": "10.0.0.1", "port": 80}]}, format="json"
    )
    assert made.status_code == 201, made.content
    stale = client.patch(
        cw.url(f"upstreams/{made.json()['id']}/"), {"retries": 2}, format="json", HTTP_IF_MATCH=f'"{number}"'
    )
    assert stale.status_code == 400 and "If-Match" in stale.json()["errors"]


def _agent_token(cw) -> str:
    from django_tenants.utils import schema_context

    from saas.gateways.models import GatewayCluster
    from saas.gateways.services import Author, create_cluster_token
    from tenants.audit import Actor

    org = cw.world.a.org
    with schema_context(org.schema_name):
        cluster = GatewayCluster.objects.get(id=cw.cluster_id)
        author = Author(actor=Actor(user=cw.world.a.user(Role.OWNER)), organization=org)
        return create_cluster_token(author, cluster, name="gw")[1]


AGENT_REGISTER = {"hostname": "gw-1", "agent_version": "1.0"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**AGENT_REGISTER, "instance_id": "not-a-uuid"}, "instance_id"),
        ({**AGENT_REGISTER, "instance_id": "1" * 100}, "instance_id"),
        ({**AGENT_REGISTER, "instance_id": 12}, "instance_id"),
        ({**AGENT_REGISTER, "hostname": "gw\x00"}, "hostname"),
        ({**AGENT_REGISTER, "labels": {"zone": "a\x00"}}, "labels.zone"),
    ],
)
@pytest.mark.django_db(transaction=True)  # registration reads the token on a thread of its own
def test_agent_register_with_malformed_input_is_400_naming_the_field(cw, body, field):
    response = register_gateway(_agent_token(cw), body)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert response.json()["detail"].startswith(field)


@pytest.mark.django_db(transaction=True)  # heartbeats check the token on a thread of their own
def test_agent_endpoints_answer_bad_methods_tokens_and_bodies_in_json(cw):
    token = _agent_token(cw)
    wrong = call_agent_api("GET", "/agent/v1/register", token)
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert "detail" in wrong.json()
    deep = register_gateway(token, b"[" * 30_000 + b"]" * 30_000)
    assert deep.status_code == 400, deep.content
    wrong = call_agent_api("GET", "/agent/v1/heartbeat", token)
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert "detail" in wrong.json()
    deep = call_agent_api("POST", "/agent/v1/heartbeat", token, b"[" * 30_000 + b"]" * 30_000)
    assert deep.status_code == 400 and deep.json()["detail"] == "Expected a JSON body.", deep.content
    # A token whose organization part is a digit outside ASCII: refused, not a 500.
    for secret in ("gct_²_abc", f"gct_{'9' * 40}_abc"):
        header = f"Bearer {secret}".encode()  # as a client sends it: UTF-8
        refused = register_gateway(None, AGENT_REGISTER, headers={"Authorization": header})
        assert refused.status_code == 401, refused.content
    registered = register_gateway(token, AGENT_REGISTER)
    assert registered.status_code == 201
    again = register_gateway(token, {**AGENT_REGISTER, "instance_id": registered.json()["instance_id"]})
    assert again.status_code == 201 and again.json()["instance_id"] == registered.json()["instance_id"]
