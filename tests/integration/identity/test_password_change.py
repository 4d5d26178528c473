"""Changing one's password: the current one first; this session goes on, the others end."""

from tenants.models import AuditEntry
from tests.factories import PASSWORD, make_org, make_user

from .steps import browser, is_signed_in, log_in, signed_in

NEW_PASSWORD = "another long passphrase 7"


def change(client, current: str, new: str):
    return client.post(
        "/api/v1/auth/password/", {"current_password": current, "new_password": new}, format="json"
    )


def test_a_password_change_keeps_this_session_and_ends_the_others(db):
    org = make_org(make_user("ada@example.com"))
    here = signed_in("ada@example.com", address="10.0.0.1")
    elsewhere = signed_in("ada@example.com", address="10.0.0.2")

    wrong = change(here, "not my password", NEW_PASSWORD)
    assert wrong.status_code == 400
    assert wrong.json()["errors"] == {"current_password": ["The current password is wrong."]}
    weak = change(here, PASSWORD, "ada")
    assert weak.status_code == 400 and "new_password" in weak.json()["errors"]
    assert is_signed_in(elsewhere)

    done = change(here, PASSWORD, NEW_PASSWORD)
    assert done.status_code == 200, done.content
    assert done.json() == {"detail": "Password changed. 1 other session signed out.", "sessions_ended": 1}
    assert is_signed_in(here) and not is_signed_in(elsewhere)
    [row] = here.get("/api/v1/auth/sessions/").json()
    assert row["current"] is True and row["ip_address"] == "10.0.0.1"

    assert log_in(browser(), "ada@example.com", PASSWORD) == 400
    assert log_in(browser(), "ada@example.com", NEW_PASSWORD) == 200
    entry = AuditEntry.objects.get(organization=org, action="user.password_change")
    assert (entry.actor_email, entry.changes["after"]) == ("ada@example.com", {"sessions_ended": 1})


def test_changing_the_password_needs_a_session(db):
    answer = change(browser(), PASSWORD, NEW_PASSWORD)
    assert answer.status_code == 401


def test_password_changes_are_limited(db):
    make_user("grace@example.com")
    here = signed_in("grace@example.com")
    statuses = [change(here, f"guess {i}", NEW_PASSWORD).status_code for i in range(11)]
    assert statuses == [400] * 10 + [429]
