"""Bad input gets 400 with {"detail", "errors": {field: [...]}} and changes nothing; no request
a client can send yields a 500."""

import pytest
from rest_framework.test import APIClient

from tenants.models import ApiToken, AuditEntry, Invitation, Membership, Organization, User
from tenants.roles import Role

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
