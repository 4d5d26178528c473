"""A member of organization B gets nothing of organization A: not through A's slug, not through
A's object ids under B's slug, not with B's API token."""

import pytest

from tenants.models import ApiToken, AuditEntry, Invitation, Membership
from tenants.roles import Role
from tests.factories import client_for

from .endpoints import ALL_ROLES, ENDPOINTS, call


def _state_of(org):
    """What a write through another organization could touch: members and their roles,
    invitations and tokens with their revocation (and the invitation link's hash)."""
    return (
        sorted(Membership.objects.filter(organization=org).values_list("id", "role")),
        sorted(
            Invitation.objects.filter(organization=org).values_list(
                "id", "revoked_at", "token_hash", "expires_at"
            )
        ),
        sorted(ApiToken.objects.filter(organization=org).values_list("id", "revoked_at")),
    )


@pytest.mark.parametrize("role", ALL_ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_other_orgs_slug_is_not_found(world, endpoint, role):
    path, body = endpoint.build(world.a.org, world.a.user(Role.OWNER))
    before = _state_of(world.a.org)
    audit_before = AuditEntry.objects.filter(organization=world.a.org).count()
    response = call(world.b.client(role), endpoint, world.a.org.slug, path, body)
    assert response.status_code == 404, response.content
    assert response.json() == {"detail": "Organization not found."}
    assert _state_of(world.a.org) == before
    assert AuditEntry.objects.filter(organization=world.a.org).count() == audit_before
    world.a.org.refresh_from_db()
    assert world.a.org.name == "Org a"


ID_ENDPOINTS = [
    e
    for e in ENDPOINTS
    if e.name
    in {"members.change_role", "members.remove", "invitations.revoke", "invitations.resend", "tokens.revoke"}
]


@pytest.mark.parametrize("endpoint", ID_ENDPOINTS, ids=lambda e: e.name)
def test_other_orgs_object_ids_are_not_found_under_own_slug(world, endpoint):
    # The B owner may do all of these in B; with A's ids they find nothing.
    path, body = endpoint.build(world.a.org, world.a.user(Role.OWNER))
    before = _state_of(world.a.org)
    response = call(world.b.client(Role.OWNER), endpoint, world.b.org.slug, path, body)
    assert response.status_code == 404, response.content
    assert _state_of(world.a.org) == before


def test_lists_show_only_own_org(world):
    client = world.b.client(Role.OWNER)
    slug = world.b.org.slug
    members = client.get(f"/api/v1/orgs/{slug}/members/").json()["results"]
    assert {m["user"]["email"] for m in members} == {m.user.email for m in world.b.members.values()}
    client.post(f"/api/v1/orgs/{world.a.org.slug}/invitations/", {"email": "x@example.com", "role": "viewer"})
    audit = world.b.client(Role.OWNER).get(f"/api/v1/orgs/{slug}/audit-log/").json()["results"]
    assert all(entry["target_repr"] != world.a.org.slug for entry in audit)
    orgs = client.get("/api/v1/orgs/").json()["results"]
    assert [o["slug"] for o in orgs] == [slug]


def test_api_token_of_b_cannot_reach_a_even_when_user_is_in_both(world):
    user = world.b.user(Role.ADMIN)
    Membership.objects.create(organization=world.a.org, user=user, role=Role.ADMIN)
    created = client_for(user).post(
        f"/api/v1/orgs/{world.b.org.slug}/tokens/", {"name": "b only"}, format="json"
    )
    secret = created.json()["token"]
    from rest_framework.test import APIClient

    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get(f"/api/v1/orgs/{world.b.org.slug}/members/").status_code == 200
    assert client.get(f"/api/v1/orgs/{world.a.org.slug}/members/").status_code == 404
    assert [o["slug"] for o in client.get("/api/v1/orgs/").json()["results"]] == [world.b.org.slug]
