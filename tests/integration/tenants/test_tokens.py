"""API tokens: one org, a role ceiling, optional expiry, secret shown once and stored hashed."""

import hashlib

from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import ApiToken, AuditEntry
from tenants.roles import Role


def _bearer(secret: str) -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_secret_shown_once_and_stored_hashed(world):
    client = world.a.client(Role.DEVELOPER)
    slug = world.a.org.slug
    created = client.post(f"/api/v1/orgs/{slug}/tokens/", {"name": "deploy bot"}, format="json")
    assert created.status_code == 201
    body = created.json()
    secret = body["token"]
    assert secret.startswith("sgw_") and len(secret) > 40
    assert body["role_ceiling"] == "developer"
    stored = ApiToken.objects.get(id=body["id"])
    assert stored.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(ApiToken.objects.filter(id=body["id"]).values().first())
    listed = client.get(f"/api/v1/orgs/{slug}/tokens/").json()["results"]
    assert [t["name"] for t in listed] == ["deploy bot"]
    assert "token" not in listed[0]
    assert secret not in str(AuditEntry.objects.filter(action="api_token.create").values().first())


def test_token_works_records_last_use_and_respects_the_ceiling(world):
    admin = world.a.client(Role.ADMIN)
    slug = world.a.org.slug
    secret = admin.post(
        f"/api/v1/orgs/{slug}/tokens/", {"name": "ro", "role_ceiling": "viewer"}, format="json"
    ).json()["token"]
    client = _bearer(secret)
    assert client.get(f"/api/v1/orgs/{slug}/members/").status_code == 200
    # The admin could; the viewer-ceiling token cannot.
    assert client.get(f"/api/v1/orgs/{slug}/audit-log/").status_code == 403
    assert client.patch(f"/api/v1/orgs/{slug}/", {"name": "x"}, format="json").status_code == 403
    token = ApiToken.objects.get(name="ro")
    assert token.last_used_at is not None
    listed = admin.get(f"/api/v1/orgs/{slug}/tokens/").json()["results"]
    assert listed[0]["last_used_at"] is not None


def test_ceiling_above_own_role_is_refused(world):
    response = world.a.client(Role.VIEWER).post(
        f"/api/v1/orgs/{world.a.org.slug}/tokens/", {"name": "x", "role_ceiling": "admin"}, format="json"
    )
    assert response.status_code == 400
    assert "role_ceiling" in response.json()["errors"]
    billing = world.a.client(Role.BILLING).post(
        f"/api/v1/orgs/{world.a.org.slug}/tokens/", {"name": "x", "role_ceiling": "viewer"}, format="json"
    )
    assert billing.status_code == 400


def test_membership_role_limits_the_token_after_a_demotion(world):
    slug = world.a.org.slug
    admin_membership = world.a.members[Role.ADMIN]
    secret = (
        world.a.client(Role.ADMIN)
        .post(f"/api/v1/orgs/{slug}/tokens/", {"name": "a"}, format="json")
        .json()["token"]
    )
    assert _bearer(secret).get(f"/api/v1/orgs/{slug}/audit-log/").status_code == 200
    world.a.client(Role.OWNER).patch(
        f"/api/v1/orgs/{slug}/members/{admin_membership.id}/", {"role": "viewer"}, format="json"
    )
    assert _bearer(secret).get(f"/api/v1/orgs/{slug}/audit-log/").status_code == 403


def test_expired_and_revoked_tokens_are_refused(world):
    slug = world.a.org.slug
    client = world.a.client(Role.DEVELOPER)
    soon = (timezone.now() + timezone.timedelta(hours=1)).isoformat()
    created = client.post(
        f"/api/v1/orgs/{slug}/tokens/", {"name": "short", "expires_at": soon}, format="json"
    ).json()
    assert _bearer(created["token"]).get(f"/api/v1/orgs/{slug}/").status_code == 200
    ApiToken.objects.filter(id=created["id"]).update(
        expires_at=timezone.now() - timezone.timedelta(seconds=1)
    )
    expired = _bearer(created["token"]).get(f"/api/v1/orgs/{slug}/")
    assert expired.status_code == 401
    assert expired.json() == {"detail": "Invalid, expired or revoked API token."}

    other = client.post(f"/api/v1/orgs/{slug}/tokens/", {"name": "other"}, format="json").json()
    assert client.delete(f"/api/v1/orgs/{slug}/tokens/{other['id']}/").status_code == 204
    assert _bearer(other["token"]).get(f"/api/v1/orgs/{slug}/").status_code == 401
    assert _bearer("sgw_not-a-real-token").get(f"/api/v1/orgs/{slug}/").status_code == 401
    assert APIClient(HTTP_AUTHORIZATION="Bearer").get(f"/api/v1/orgs/{slug}/").status_code == 401


def test_tokens_cannot_manage_tokens_or_create_orgs(world):
    slug = world.a.org.slug
    secret = (
        world.a.client(Role.OWNER)
        .post(f"/api/v1/orgs/{slug}/tokens/", {"name": "o"}, format="json")
        .json()["token"]
    )
    client = _bearer(secret)
    assert client.post(f"/api/v1/orgs/{slug}/tokens/", {"name": "child"}, format="json").status_code == 403
    assert client.post("/api/v1/orgs/", {"name": "Side project"}, format="json").status_code == 403
    assert client.post(f"/api/v1/orgs/{slug}/members/leave/").status_code == 403


def test_members_see_own_tokens_admins_see_all_and_revoke(world):
    slug = world.a.org.slug
    dev, viewer, admin = (world.a.client(r) for r in (Role.DEVELOPER, Role.VIEWER, Role.ADMIN))
    dev_token = dev.post(f"/api/v1/orgs/{slug}/tokens/", {"name": "dev"}, format="json").json()
    viewer.post(f"/api/v1/orgs/{slug}/tokens/", {"name": "viewer"}, format="json")
    assert [t["name"] for t in dev.get(f"/api/v1/orgs/{slug}/tokens/").json()["results"]] == ["dev"]
    assert {t["name"] for t in admin.get(f"/api/v1/orgs/{slug}/tokens/").json()["results"]} == {
        "dev",
        "viewer",
    }
    assert viewer.delete(f"/api/v1/orgs/{slug}/tokens/{dev_token['id']}/").status_code == 404
    assert admin.delete(f"/api/v1/orgs/{slug}/tokens/{dev_token['id']}/").status_code == 204
