"""A person's sessions: listed with device, address and times, "this session" marked; any of them
ended (its cookie stops working at once), or all the others. Removal from an organization signs
the member out everywhere. API tokens cannot touch any of it."""

from datetime import timedelta

import pytest

from identity.models import UserSession
from tenants.models import AuditEntry
from tenants.roles import Role
from tests.factories import add_member, client_for, make_org, make_user

from .steps import (
    CHROME_ON_MAC,
    FIREFOX_ON_WINDOWS,
    SAFARI_ON_IPHONE,
    actions,
    at,
    browser,
    is_signed_in,
    log_in,
    signed_in,
)

NOW = at(2026, 3, 10, 9, 0)
pytestmark = pytest.mark.time_machine(NOW, tick=False)


def test_a_person_sees_their_sessions_and_ends_one_from_another_browser(db, time_machine):
    org = make_org(make_user("ada@example.com"))
    laptop = signed_in("ada@example.com", address="10.0.0.1", user_agent=CHROME_ON_MAC)
    time_machine.move_to(NOW + timedelta(minutes=5), tick=False)
    phone = signed_in("ada@example.com", address="10.0.0.2", user_agent=SAFARI_ON_IPHONE)

    listed = laptop.get("/api/v1/auth/sessions/")
    assert listed.status_code == 200, listed.content
    rows = {row["device"]: row for row in listed.json()}
    assert set(rows) == {"Chrome on macOS", "Safari on iOS"}
    mine, other = rows["Chrome on macOS"], rows["Safari on iOS"]
    assert (mine["current"], other["current"]) == (True, False)
    assert (mine["ip_address"], other["ip_address"]) == ("10.0.0.1", "10.0.0.2")
    assert other["signed_in_at"] == "2026-03-10T09:05:00Z"
    assert other["method"] == "password"
    assert [row["device"] for row in listed.json()] == ["Safari on iOS", "Chrome on macOS"]  # last seen first

    assert laptop.delete(f"/api/v1/auth/sessions/{other['id']}/").status_code == 204
    assert not is_signed_in(phone)
    assert is_signed_in(laptop)
    assert [row["device"] for row in laptop.get("/api/v1/auth/sessions/").json()] == ["Chrome on macOS"]
    ended = AuditEntry.objects.get(organization=org, action="session.end")
    assert ended.changes["before"]["device"] == "Safari on iOS"
    assert ended.changes["before"]["ip_address"] == "10.0.0.2"

    # Ending this very session signs it out (a minute on: the request refreshes it on the way).
    time_machine.move_to(NOW + timedelta(minutes=7), tick=False)
    assert laptop.delete(f"/api/v1/auth/sessions/{mine['id']}/").status_code == 204
    assert not is_signed_in(laptop)


def test_another_persons_session_or_a_made_up_one_is_not_found(db):
    make_user("ada@example.com")
    make_user("grace@example.com")
    ada = signed_in("ada@example.com")
    signed_in("grace@example.com")
    graces = UserSession.objects.get(user__email="grace@example.com")
    for session_id in (str(graces.id), "999999", "abc", "9" * 30):
        answer = ada.delete(f"/api/v1/auth/sessions/{session_id}/")
        assert answer.status_code == 404, (session_id, answer.content)
        assert answer.json() == {"detail": "No such session."}
    assert UserSession.objects.filter(id=graces.id).exists()


def test_last_seen_moves_at_most_once_a_minute_with_the_address(db, time_machine):
    make_user("linus@example.com")
    laptop = signed_in("linus@example.com", address="10.0.0.1")

    def last_seen() -> tuple[str, str]:
        [row] = laptop.get("/api/v1/auth/sessions/").json()
        return row["last_seen_at"], row["ip_address"]

    time_machine.move_to(NOW + timedelta(seconds=30), tick=False)
    laptop.defaults["REMOTE_ADDR"] = "10.9.9.9"
    assert last_seen() == ("2026-03-10T09:00:00Z", "10.0.0.1")
    time_machine.move_to(NOW + timedelta(seconds=61), tick=False)
    assert last_seen() == ("2026-03-10T09:01:01Z", "10.9.9.9")


def test_all_other_sessions_end_at_once(db):
    org = make_org(make_user("ken@example.com"))
    here = signed_in("ken@example.com", address="10.0.0.1")
    others = [
        signed_in("ken@example.com", address=f"10.0.0.{i}", user_agent=FIREFOX_ON_WINDOWS) for i in (2, 3)
    ]
    answer = here.post("/api/v1/auth/sessions/end-others/")
    assert answer.json() == {"detail": "2 other sessions signed out.", "sessions_ended": 2}
    assert is_signed_in(here) and not any(is_signed_in(other) for other in others)
    assert here.post("/api/v1/auth/sessions/end-others/").json()["sessions_ended"] == 0
    assert actions(org, "session.") == ["session.end_all"]


def test_a_member_removed_from_an_organization_is_signed_out_everywhere(db):
    org = make_org(make_user("owner@example.com"))
    other_org = make_org(make_user("other-owner@example.com"))
    member = make_user("member@example.com")
    add_member(org, Role.DEVELOPER, member)
    add_member(other_org, Role.VIEWER, member)
    sessions = [signed_in("member@example.com", address=f"10.0.0.{i}") for i in (1, 2)]

    owner = client_for(org.memberships.get(role=Role.OWNER).user)
    membership = org.memberships.get(user=member)
    assert owner.delete(f"/api/v1/orgs/{org.slug}/members/{membership.id}/").status_code == 204
    assert not any(is_signed_in(session) for session in sessions)
    # The organizations the member is still in see why.
    entry = AuditEntry.objects.get(organization=other_org, action="session.end_all")
    assert entry.changes["after"] == {"sessions_ended": 2, "reason": "removed from an organization"}
    assert entry.actor_email == "owner@example.com"
    # Signing in again still works: they remain a member elsewhere.
    assert log_in(browser(), "member@example.com") == 200


def test_logging_out_forgets_the_session(db):
    make_user("barbara@example.com")
    first = signed_in("barbara@example.com", address="10.0.0.1")
    second = signed_in("barbara@example.com", address="10.0.0.2")
    assert second.post("/api/v1/auth/logout/").status_code == 204
    assert [row["ip_address"] for row in first.get("/api/v1/auth/sessions/").json()] == ["10.0.0.1"]


def test_a_session_from_before_sessions_were_tracked_is_listed_from_its_next_request(db):
    user = make_user("edsger@example.com")
    client = client_for(user)  # signed in without the login view: no row yet
    assert not UserSession.objects.filter(user=user).exists()
    [row] = client.get("/api/v1/auth/sessions/").json()
    assert row["current"] is True


def test_api_tokens_cannot_see_or_end_sessions(db):
    user = make_user("alan@example.com")
    org = make_org(user)
    session = signed_in("alan@example.com")
    created = session.post(
        f"/api/v1/orgs/{org.slug}/tokens/", {"name": "ci", "role_ceiling": "owner"}, format="json"
    )
    token = browser()
    token.credentials(HTTP_AUTHORIZATION=f"Bearer {created.json()['token']}")
    for method, path in (
        ("get", "/api/v1/auth/sessions/"),
        ("post", "/api/v1/auth/sessions/end-others/"),
        ("get", "/api/v1/auth/account/"),
        ("post", "/api/v1/auth/password/"),
    ):
        answer = getattr(token, method)(path, {}, format="json")
        assert answer.status_code == 403, (path, answer.content)
        assert answer.json()["detail"] == "Manage your account signed in, not with an API token."
    assert is_signed_in(session)


def test_signed_out_nothing_is_listed(db):
    assert browser().get("/api/v1/auth/sessions/").status_code == 401
