"""The account's email address: verified by the link sent at sign-up (or by accepting an emailed
invitation), changed with the current password and a link to the new address."""

import re
from datetime import timedelta

from django.conf import settings
from django.core import mail
from django.utils import timezone

from tenants.credentials import hash_secret, new_secret
from tenants.models import AuditEntry, Invitation, User
from tenants.roles import Role
from tests.factories import PASSWORD, make_org, make_user

from .steps import actions, at, browser, link_in_last_mail, log_in, signed_in


def account(client) -> dict:
    answer = client.get("/api/v1/auth/account/")
    assert answer.status_code == 200, answer.content
    return answer.json()


def follow(link: str):
    token = link.rsplit("/", 1)[-1]
    return browser("10.0.0.9").post("/api/v1/auth/email/verify/", {"token": token}, format="json")


def test_sign_up_sends_a_link_that_verifies_the_address(db, django_capture_on_commit_callbacks):
    client = browser()
    with django_capture_on_commit_callbacks(execute=True):
        signup = client.post(
            "/api/v1/auth/signup/", {"email": "Ada@Example.com", "password": PASSWORD}, format="json"
        )
    assert signup.status_code == 201, signup.content
    link = link_in_last_mail("ada@example.com")
    assert link.startswith(f"{settings.PUBLIC_URL}/console/verify-email/")
    assert mail.outbox[-1].subject == "Confirm your email address"
    assert account(client) == {
        "email": "ada@example.com",
        "name": "",
        "email_verified": False,
        "pending_email": "",
    }

    # Asked again: a new link.
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post("/api/v1/auth/email/verification/")
    assert again.status_code == 202 and len(mail.outbox) == 2

    # Followed in any browser, signed in or not; twice is fine.
    for _ in range(2):
        verified = follow(link)
        assert verified.status_code == 200, verified.content
        assert verified.json() == {"detail": "ada@example.com is verified.", "email": "ada@example.com"}
    assert account(client)["email_verified"] is True
    assert client.post("/api/v1/auth/email/verification/").status_code == 400

    org = User.objects.get(email="ada@example.com").memberships.get().organization
    assert actions(org, "user.") == ["user.sign_in", "user.email_verify"]


def test_an_invited_person_is_verified_by_accepting_the_emailed_invitation(db):
    organization = make_org(make_user("owner@example.com"))
    secret = new_secret()
    Invitation.objects.create(
        organization=organization,
        email="nina@example.com",
        role=Role.DEVELOPER,
        token_hash=hash_secret(secret),
        expires_at=timezone.now() + timedelta(days=1),
    )
    client = browser()
    accepted = client.post(
        "/api/v1/invitations/accept/", {"token": secret, "password": PASSWORD, "name": "Nina"}, format="json"
    )
    assert accepted.status_code == 200, accepted.content
    assert account(client)["email_verified"] is True
    assert [row["method"] for row in client.get("/api/v1/auth/sessions/").json()] == ["invitation"]
    entry = AuditEntry.objects.get(organization=organization, action="user.email_verify")
    assert entry.changes["after"] == {"email": "nina@example.com", "by": "invitation"}


def test_the_address_changes_once_the_link_sent_to_the_new_one_is_followed(
    db, django_capture_on_commit_callbacks
):
    org = make_org(make_user("grace@example.com"))
    make_user("taken@example.com")
    client = signed_in("grace@example.com")

    def ask(email: str, password: str = PASSWORD):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/api/v1/auth/email/", {"email": email, "password": password}, format="json")

    assert ask("new@example.com", "wrong").json()["errors"] == {
        "password": ["The current password is wrong."]
    }
    assert ask("TAKEN@example.com").json()["errors"] == {
        "email": ["An account with this email already exists."]
    }
    assert ask("grace@example.com").json()["errors"] == {"email": ["This is already your address."]}
    assert mail.outbox == []

    asked = ask("Grace.Hopper@Example.com")
    assert asked.status_code == 202, asked.content
    assert asked.json()["pending_email"] == "grace.hopper@example.com"
    link = link_in_last_mail("grace.hopper@example.com")
    assert mail.outbox[-1].subject == "Confirm your new email address"
    # Nothing changes until the link is followed.
    assert account(client)["email"] == "grace@example.com"
    assert account(client)["pending_email"] == "grace.hopper@example.com"

    with django_capture_on_commit_callbacks(execute=True):
        changed = follow(link)
    assert changed.status_code == 200, changed.content
    assert account(client) == {
        "email": "grace.hopper@example.com",
        "name": "",
        "email_verified": True,
        "pending_email": "",
    }
    # The old address is told; sign-in now takes the new one.
    assert mail.outbox[-1].to == ["grace@example.com"]
    assert "grace.hopper@example.com" in mail.outbox[-1].body
    assert log_in(browser(), "grace.hopper@example.com") == 200
    assert log_in(browser(), "grace@example.com") == 400

    entry = AuditEntry.objects.get(organization=org, action="user.email_change")
    assert entry.changes == {
        "before": {"email": "grace@example.com"},
        "after": {"email": "grace.hopper@example.com"},
    }
    assert actions(org, "user.email") == ["user.email_change_request", "user.email_change"]
    assert follow(link).status_code == 200  # followed again: already done


def test_a_change_link_no_longer_applies_once_the_address_changed_otherwise(
    db, django_capture_on_commit_callbacks
):
    make_user("ken@example.com")
    client = signed_in("ken@example.com")
    for address in ("first@example.com", "second@example.com"):
        with django_capture_on_commit_callbacks(execute=True):
            client.post("/api/v1/auth/email/", {"email": address, "password": PASSWORD}, format="json")
    first_link, second_link = (re.search(r"https?://\S+", message.body).group(0) for message in mail.outbox)
    assert follow(second_link).status_code == 200
    refused = follow(first_link)
    assert refused.status_code == 400
    assert refused.json()["errors"]["token"] == [
        "This link no longer applies: the account's address changed since it was sent."
    ]


def test_a_verification_link_expires_after_48_hours_and_a_forged_one_is_refused(
    db, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(at(2026, 3, 10, 9, 0), tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        browser().post(
            "/api/v1/auth/signup/", {"email": "linus@example.com", "password": PASSWORD}, format="json"
        )
    link = link_in_last_mail("linus@example.com")
    time_machine.move_to(at(2026, 3, 12, 9, 0) + timedelta(seconds=1), tick=False)
    expired = follow(link)
    assert expired.status_code == 400
    assert expired.json()["errors"]["token"] == ["This link has expired: ask for a new one from the console."]
    for forged in (link[:-2] + "xx", "not-a-token", ""):
        answer = follow(forged)
        assert answer.status_code == 400 and "token" in answer.json()["errors"], forged
