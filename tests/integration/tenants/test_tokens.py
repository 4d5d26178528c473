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
    assert body["role_ceiling"] == "viewer"  # the least, unless asked for more
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
        .post(f"/api/v1/orgs/{slug}/tokens/", {"name": "a", "role_ceiling": "admin"}, format="json")
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


# --- a token cannot escalate: no owner role handed out or taken away, no tokens minted --------


def _owner_token(world) -> APIClient:
    secret = (
        world.a.client(Role.OWNER)
        .post(
            f"/api/v1/orgs/{world.a.org.slug}/tokens/",
            {"name": "owner bot", "role_ceiling": "owner"},
            format="json",
        )
        .json()["token"]
    )
    assert ApiToken.objects.get(name="owner bot").role_ceiling == Role.OWNER
    return _bearer(secret)


def test_an_owner_token_cannot_invite_an_owner(world):
    slug = world.a.org.slug
    client = _owner_token(world)
    response = client.post(
        f"/api/v1/orgs/{slug}/invitations/", {"email": "boss@example.com", "role": "owner"}, format="json"
    )
    assert response.status_code == 403, response.content
    assert set(response.json()) == {"detail"}
    # Below owner, the token may invite.
    admin = client.post(
        f"/api/v1/orgs/{slug}/invitations/", {"email": "adm@example.com", "role": "admin"}, format="json"
    )
    assert admin.status_code == 201, admin.content


def test_an_owner_token_cannot_promote_to_owner_or_touch_an_owner(world):
    slug = world.a.org.slug
    client = _owner_token(world)
    admin = world.a.members[Role.ADMIN]
    promoted = client.patch(f"/api/v1/orgs/{slug}/members/{admin.id}/", {"role": "owner"}, format="json")
    assert promoted.status_code == 403, promoted.content
    admin.refresh_from_db()
    assert admin.role == Role.ADMIN
    # A second owner (made by an owner's session) can neither be demoted nor removed by the token.
    session = world.a.client(Role.OWNER)
    assert (
        session.patch(
            f"/api/v1/orgs/{slug}/members/{admin.id}/", {"role": "owner"}, format="json"
        ).status_code
        == 200
    )
    demoted = client.patch(f"/api/v1/orgs/{slug}/members/{admin.id}/", {"role": "viewer"}, format="json")
    assert demoted.status_code == 403, demoted.content
    assert client.delete(f"/api/v1/orgs/{slug}/members/{admin.id}/").status_code == 403
    admin.refresh_from_db()
    assert admin.role == Role.OWNER
    # The token still manages roles below owner.
    developer = world.a.members[Role.DEVELOPER]
    changed = client.patch(f"/api/v1/orgs/{slug}/members/{developer.id}/", {"role": "viewer"}, format="json")
    assert changed.status_code == 200, changed.content


def test_an_owner_session_can_invite_and_promote_owners(world):
    slug = world.a.org.slug
    session = world.a.client(Role.OWNER)
    invited = session.post(
        f"/api/v1/orgs/{slug}/invitations/", {"email": "co@example.com", "role": "owner"}, format="json"
    )
    assert invited.status_code == 201, invited.content
    developer = world.a.members[Role.DEVELOPER]
    promoted = session.patch(f"/api/v1/orgs/{slug}/members/{developer.id}/", {"role": "owner"}, format="json")
    assert promoted.status_code == 200, promoted.content


def test_no_token_reaches_owner_scopes_or_mints_tokens_in_the_service_layer(world):
    """The service layer refuses too, whatever view calls it."""
    import pytest

    from core.errors import Forbidden
    from tenants import services
    from tenants.audit import Actor
    from tenants.roles import Scope, scopes_for

    assert Scope.OWNER_WRITE not in scopes_for(Role.OWNER, Role.OWNER)
    assert Scope.OWNER_WRITE in scopes_for(Role.OWNER)
    _owner_token(world)
    token = ApiToken.objects.get(name="owner bot")
    owner = world.a.members[Role.OWNER]
    actor = Actor(user=owner.user, api_token=token)
    session_scopes = scopes_for(Role.OWNER)  # even with an owner's scopes
    with pytest.raises(Forbidden):
        services.create_api_token(actor, world.a.org, owner, name="child", role_ceiling=None, expires_at=None)
    with pytest.raises(Forbidden):
        services.invite_member(
            actor, world.a.org, email="x@example.com", role=Role.OWNER, inviter_scopes=session_scopes
        )
    with pytest.raises(Forbidden):
        services.change_member_role(
            actor, world.a.org, world.a.members[Role.ADMIN], Role.OWNER, session_scopes
        )
    with pytest.raises(Forbidden):
        services.create_organization(actor, name="Side project", slug=None)
    assert ApiToken.objects.filter(name="child").count() == 0


def test_an_api_token_cannot_mint_a_gateway_agent_token(world):
    """An agent token reads the cluster's secrets decrypted: a token may manage clusters and
    revoke agent tokens, but only a person logged in makes or rotates one."""
    slug = world.a.org.slug
    client = _owner_token(world)
    cluster = client.post(f"/api/v1/orgs/{slug}/clusters/", {"name": "edge"}, format="json")
    assert cluster.status_code == 201, cluster.content
    tokens = f"/api/v1/orgs/{slug}/clusters/{cluster.json()['id']}/tokens/"
    refused = client.post(tokens, {"name": "gw"}, format="json")
    assert refused.status_code == 403 and "log in" in refused.json()["detail"]
    made = world.a.client(Role.OWNER).post(tokens, {"name": "gw"}, format="json")
    assert made.status_code == 201, made.content
    assert client.post(f"{tokens}{made.json()['id']}/rotate/").status_code == 403
    assert client.get(tokens).status_code == 200
    assert client.delete(f"{tokens}{made.json()['id']}/").status_code == 204
