"""Invite by email with a role, accept (signing up on the way), change roles, remove, leave;
the last owner stays."""

import re

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import ApiToken, Invitation, Membership
from tenants.roles import Role
from tests.factories import add_member, client_for, make_user


def _invite(client, slug, email, role, capture):
    with capture(execute=True):
        response = client.post(
            f"/api/v1/orgs/{slug}/invitations/", {"email": email, "role": role}, format="json"
        )
    assert response.status_code == 201, response.content
    return response.json()


def _link_secret(message) -> str:
    match = re.search(r"/invitations/(\S+)", message.body)
    assert match, message.body
    return match.group(1)


def test_invite_new_person_who_signs_up_on_the_way(world, django_capture_on_commit_callbacks):
    org = world.a.org
    invitation = _invite(
        world.a.client(Role.ADMIN),
        org.slug,
        "New.Person@Example.com",
        Role.DEVELOPER,
        django_capture_on_commit_callbacks,
    )
    assert invitation["status"] == "pending"
    assert invitation["email"] == "new.person@example.com"
    [message] = mail.outbox
    assert message.to == ["new.person@example.com"]
    assert org.name in message.subject
    secret = _link_secret(message)
    # Only the hash is stored.
    stored = Invitation.objects.get(id=invitation["id"])
    assert secret not in stored.token_hash

    anonymous = APIClient()
    preview = anonymous.post("/api/v1/invitations/lookup/", {"token": secret}, format="json").json()
    assert preview["organization"] == {"name": org.name, "slug": org.slug}
    assert preview["account_exists"] is False

    missing_password = anonymous.post("/api/v1/invitations/accept/", {"token": secret}, format="json")
    assert missing_password.status_code == 400
    assert "password" in missing_password.json()["errors"]

    accepted = anonymous.post(
        "/api/v1/invitations/accept/",
        {"token": secret, "password": "a long passphrase", "name": "New"},
        format="json",
    )
    assert accepted.status_code == 200, accepted.content
    assert {"id": org.id, "name": org.name, "slug": org.slug, "role": "developer"} in accepted.json()[
        "organizations"
    ]
    # Logged in on the way.
    assert anonymous.get(f"/api/v1/orgs/{org.slug}/members/").status_code == 200

    # Single use.
    again = APIClient().post(
        "/api/v1/invitations/accept/", {"token": secret, "password": "another passphrase"}, format="json"
    )
    assert again.status_code == 400
    assert again.json()["detail"] == "This invitation is accepted."


def test_the_emails_api_instructions_accept_the_invitation(
    world, settings, django_capture_on_commit_callbacks
):
    _invite(
        world.a.client(Role.ADMIN),
        world.a.org.slug,
        "api.user@example.com",
        Role.VIEWER,
        django_capture_on_commit_callbacks,
    )
    [message] = mail.outbox
    assert f"{settings.PUBLIC_URL}/console/" in message.body
    match = re.search(r"POST (\S+) with the JSON", message.body)
    assert match, message.body
    url = match.group(1)
    assert url == f"{settings.PUBLIC_URL}/api/v1/invitations/accept/"
    accepted = APIClient().post(
        url.removeprefix(settings.PUBLIC_URL),
        {"token": _link_secret(message), "password": "a long passphrase"},
        format="json",
    )
    assert accepted.status_code == 200, accepted.content
    assert (
        Membership.objects.get(organization=world.a.org, user__email="api.user@example.com").role
        == Role.VIEWER
    )


def test_existing_user_accepts_while_logged_in(world, django_capture_on_commit_callbacks):
    person = make_user("existing@example.com")
    _invite(
        world.a.client(Role.OWNER),
        world.a.org.slug,
        "existing@example.com",
        Role.VIEWER,
        django_capture_on_commit_callbacks,
    )
    secret = _link_secret(mail.outbox[0])
    # Not logged in: told to log in first, nothing created.
    refused = APIClient().post(
        "/api/v1/invitations/accept/", {"token": secret, "password": "x" * 12}, format="json"
    )
    assert refused.status_code == 403
    # Logged in as someone else: refused.
    other = client_for(make_user("someone.else@example.com"))
    assert other.post("/api/v1/invitations/accept/", {"token": secret}, format="json").status_code == 403
    ok = client_for(person).post("/api/v1/invitations/accept/", {"token": secret}, format="json")
    assert ok.status_code == 200
    assert Membership.objects.get(organization=world.a.org, user=person).role == Role.VIEWER


def test_expired_and_revoked_invitations_cannot_be_accepted(world, django_capture_on_commit_callbacks):
    client = world.a.client(Role.OWNER)
    first = _invite(
        client, world.a.org.slug, "late@example.com", Role.VIEWER, django_capture_on_commit_callbacks
    )
    secret = _link_secret(mail.outbox[-1])
    Invitation.objects.filter(id=first["id"]).update(
        expires_at=timezone.now() - timezone.timedelta(seconds=1)
    )
    response = APIClient().post(
        "/api/v1/invitations/accept/", {"token": secret, "password": "a long passphrase"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "This invitation is expired."

    second = _invite(
        client, world.a.org.slug, "late@example.com", Role.VIEWER, django_capture_on_commit_callbacks
    )
    secret = _link_secret(mail.outbox[-1])
    assert client.delete(f"/api/v1/orgs/{world.a.org.slug}/invitations/{second['id']}/").status_code == 204
    response = APIClient().post(
        "/api/v1/invitations/accept/", {"token": secret, "password": "a long passphrase"}, format="json"
    )
    assert response.json()["detail"] == "This invitation is revoked."
    assert (
        APIClient().post("/api/v1/invitations/accept/", {"token": "made-up"}, format="json").status_code
        == 404
    )


def test_resend_sends_a_new_link_and_the_old_one_stops_working(world, django_capture_on_commit_callbacks):
    client = world.a.client(Role.ADMIN)
    invitation = _invite(
        client, world.a.org.slug, "resend@example.com", Role.VIEWER, django_capture_on_commit_callbacks
    )
    old = _link_secret(mail.outbox[-1])
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            client.post(f"/api/v1/orgs/{world.a.org.slug}/invitations/{invitation['id']}/resend/").status_code
            == 200
        )
    new = _link_secret(mail.outbox[-1])
    assert new != old
    assert APIClient().post("/api/v1/invitations/lookup/", {"token": old}, format="json").status_code == 404
    assert APIClient().post("/api/v1/invitations/lookup/", {"token": new}, format="json").status_code == 200


def test_inviting_a_member_or_granting_owner_without_being_owner(world, django_capture_on_commit_callbacks):
    admin = world.a.client(Role.ADMIN)
    slug = world.a.org.slug
    member_email = world.a.user(Role.VIEWER).email
    response = admin.post(
        f"/api/v1/orgs/{slug}/invitations/", {"email": member_email, "role": "viewer"}, format="json"
    )
    assert response.status_code == 400
    assert "already a member" in response.json()["errors"]["email"][0]
    response = admin.post(
        f"/api/v1/orgs/{slug}/invitations/", {"email": "boss@example.com", "role": "owner"}, format="json"
    )
    assert response.status_code == 403
    _invite(
        world.a.client(Role.OWNER), slug, "boss@example.com", Role.OWNER, django_capture_on_commit_callbacks
    )


def test_change_roles_and_owner_rules(world):
    slug = world.a.org.slug
    owner, admin = world.a.client(Role.OWNER), world.a.client(Role.ADMIN)
    dev = world.a.members[Role.DEVELOPER]
    response = admin.patch(f"/api/v1/orgs/{slug}/members/{dev.id}/", {"role": "admin"}, format="json")
    assert response.status_code == 200
    assert response.json()["role"] == "admin"
    # Admins cannot make owners, nor touch owners.
    assert (
        admin.patch(f"/api/v1/orgs/{slug}/members/{dev.id}/", {"role": "owner"}, format="json").status_code
        == 403
    )
    owner_membership = world.a.members[Role.OWNER]
    assert (
        admin.patch(
            f"/api/v1/orgs/{slug}/members/{owner_membership.id}/", {"role": "viewer"}, format="json"
        ).status_code
        == 403
    )
    assert admin.delete(f"/api/v1/orgs/{slug}/members/{owner_membership.id}/").status_code == 403
    # The last owner can be neither demoted nor removed, not even by themself.
    demote = owner.patch(
        f"/api/v1/orgs/{slug}/members/{owner_membership.id}/", {"role": "admin"}, format="json"
    )
    assert demote.status_code == 400
    assert "last owner" in demote.json()["detail"]
    assert owner.delete(f"/api/v1/orgs/{slug}/members/{owner_membership.id}/").status_code == 400
    assert owner.post(f"/api/v1/orgs/{slug}/members/leave/").status_code == 400
    # With a second owner, the first may step down.
    assert (
        owner.patch(f"/api/v1/orgs/{slug}/members/{dev.id}/", {"role": "owner"}, format="json").status_code
        == 200
    )
    assert (
        owner.patch(
            f"/api/v1/orgs/{slug}/members/{owner_membership.id}/", {"role": "admin"}, format="json"
        ).status_code
        == 200
    )


def test_remove_and_leave_end_access_and_tokens(world):
    slug = world.a.org.slug
    viewer = world.a.members[Role.VIEWER]
    viewer_client = client_for(viewer.user)
    token = viewer_client.post(f"/api/v1/orgs/{slug}/tokens/", {"name": "mine"}, format="json").json()[
        "token"
    ]
    assert world.a.client(Role.ADMIN).delete(f"/api/v1/orgs/{slug}/members/{viewer.id}/").status_code == 204
    # Removed: signed out everywhere (identity), as well as out of the organization.
    assert viewer_client.get(f"/api/v1/orgs/{slug}/").status_code == 401
    assert client_for(viewer.user).get(f"/api/v1/orgs/{slug}/").status_code == 404
    assert APIClient(HTTP_AUTHORIZATION=f"Bearer {token}").get(f"/api/v1/orgs/{slug}/").status_code == 401
    assert ApiToken.objects.get(user=viewer.user).revoked_at is not None

    dev_client = world.a.client(Role.DEVELOPER)
    assert dev_client.post(f"/api/v1/orgs/{slug}/members/leave/").status_code == 204
    assert dev_client.get(f"/api/v1/orgs/{slug}/").status_code == 404
    assert [o["slug"] for o in dev_client.get("/api/v1/orgs/").json()["results"]] == []


def test_members_list_shows_people_and_roles(world):
    response = world.a.client(Role.VIEWER).get(f"/api/v1/orgs/{world.a.org.slug}/members/")
    assert response.status_code == 200
    roles = sorted(m["role"] for m in response.json()["results"])
    assert roles == sorted(["owner", "admin", "developer", "viewer", "billing"])
    assert all("password" not in m["user"] for m in response.json()["results"])


@pytest.mark.django_db(transaction=True)
def test_two_owners_demoting_each_other_at_once_leave_one_owner():
    import threading

    from django.db import connection

    from tenants import services
    from tenants.audit import Actor
    from tenants.roles import ROLE_SCOPES
    from tests.factories import make_org

    first = make_user()
    org = make_org(first)
    second = add_member(org, Role.OWNER)
    first_membership = Membership.objects.get(organization=org, user=first)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def demote(actor_user, target_id):
        try:
            target = Membership.objects.select_related("user").get(id=target_id)
            barrier.wait()
            services.change_member_role(
                Actor(user=actor_user), org, target, Role.ADMIN, ROLE_SCOPES[Role.OWNER]
            )
            outcomes.append("demoted")
        except Exception as exc:
            outcomes.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=demote, args=(first, second.id)),
        threading.Thread(target=demote, args=(second.user, first_membership.id)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["InvalidInput", "demoted"]
    assert Membership.objects.filter(organization=org, role=Role.OWNER).count() == 1
