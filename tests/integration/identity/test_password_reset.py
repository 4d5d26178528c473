"""A forgotten password, reset through the emailed link: the answer never tells whether an
account has the address, the link works once and expires, and the reset signs the account out
everywhere."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail

from tenants.models import AuditEntry
from tests.factories import PASSWORD, make_org, make_user

from .steps import actions, at, browser, is_signed_in, link_in_last_mail, log_in, reset_parts, signed_in

NEW_PASSWORD = "a brand new passphrase 2026"


def ask_reset(email: str, capture, address: str = "10.0.0.7"):
    with capture(execute=True):
        return browser(address).post("/api/v1/auth/password-reset/", {"email": email}, format="json")


def test_a_forgotten_password_is_reset_once_through_the_emailed_link(db, django_capture_on_commit_callbacks):
    user = make_user("ada@example.com")
    org = make_org(user)
    laptop = signed_in("ada@example.com", address="10.0.0.1")
    phone = signed_in("ada@example.com", address="10.0.0.2")

    asked = ask_reset("Ada@Example.com", django_capture_on_commit_callbacks)
    assert asked.status_code == 202, asked.content
    assert "works once, within 60 minutes" in asked.json()["detail"]
    link = link_in_last_mail("ada@example.com")
    assert link.startswith(f"{settings.PUBLIC_URL}/console/reset/")
    assert "60 minutes" in mail.outbox[-1].body

    # The console's page checks the link first, then sets a password good enough.
    anonymous = browser("10.0.0.7")
    checked = anonymous.post("/api/v1/auth/password-reset/check/", reset_parts(link), format="json")
    assert checked.json() == {"email": "ada@example.com"}
    weak = anonymous.post(
        "/api/v1/auth/password-reset/confirm/", {**reset_parts(link), "password": "123"}, format="json"
    )
    assert weak.status_code == 400 and "password" in weak.json()["errors"]
    done = anonymous.post(
        "/api/v1/auth/password-reset/confirm/", {**reset_parts(link), "password": NEW_PASSWORD}, format="json"
    )
    assert done.status_code == 200, done.content
    assert done.json()["sessions_ended"] == 2

    # Every session of the account ended; the new password works, the old one no longer.
    assert not is_signed_in(laptop) and not is_signed_in(phone)
    assert log_in(browser(), "ada@example.com", PASSWORD) == 400
    assert log_in(browser(), "ada@example.com", NEW_PASSWORD) == 200

    # The link worked once.
    for path, body in (
        ("check/", reset_parts(link)),
        ("confirm/", {**reset_parts(link), "password": "x" * 20}),
    ):
        again = anonymous.post(f"/api/v1/auth/password-reset/{path}", body, format="json")
        assert again.status_code == 400
        assert again.json()["errors"]["token"] == [
            "This link has expired or was already used: ask for a new one."
        ]

    assert actions(org, "user.password_reset") == ["user.password_reset_request", "user.password_reset"]
    reset = AuditEntry.objects.get(organization=org, action="user.password_reset")
    assert (reset.actor_email, reset.changes["after"]) == ("ada@example.com", {"sessions_ended": 2})


def test_the_answer_is_the_same_whether_or_not_an_account_has_the_address(
    db, django_capture_on_commit_callbacks, caplog
):
    make_org(make_user("grace@example.com"))
    known = ask_reset("grace@example.com", django_capture_on_commit_callbacks, address="10.0.0.8")
    unknown = ask_reset("nobody@example.com", django_capture_on_commit_callbacks, address="10.0.0.9")
    assert (known.status_code, unknown.status_code) == (202, 202)
    assert known.json()["detail"].replace("grace", "nobody") == unknown.json()["detail"]
    assert [message.to for message in mail.outbox] == [["grace@example.com"]]
    # The unknown address is in the server's log and nowhere else.
    assert "nobody@example.com" in caplog.text
    assert not AuditEntry.objects.filter(changes__icontains="nobody").exists()


def test_a_reset_link_expires_after_an_hour(db, time_machine, django_capture_on_commit_callbacks):
    time_machine.move_to(at(2026, 3, 10, 9, 0), tick=False)
    make_user("linus@example.com")
    ask_reset("linus@example.com", django_capture_on_commit_callbacks)
    parts = reset_parts(link_in_last_mail("linus@example.com"))

    def check() -> int:
        return browser().post("/api/v1/auth/password-reset/check/", parts, format="json").status_code

    time_machine.move_to(at(2026, 3, 10, 9, 59), tick=False)
    assert check() == 200
    time_machine.move_to(at(2026, 3, 10, 10, 0) + timedelta(seconds=1), tick=False)
    assert check() == 400


def test_a_tampered_or_malformed_link_is_refused(db, django_capture_on_commit_callbacks):
    make_user("ken@example.com")
    ask_reset("ken@example.com", django_capture_on_commit_callbacks)
    parts = reset_parts(link_in_last_mail("ken@example.com"))
    for uid, token in (
        (parts["uid"], parts["token"][:-1] + ("0" if parts["token"][-1] != "0" else "1")),
        ("MTIzNDU2Nzg5", parts["token"]),  # another user's id
        ("!!", parts["token"]),
        ("OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5", parts["token"]),  # past bigint
    ):
        answer = browser().post(
            "/api/v1/auth/password-reset/check/", {"uid": uid, "token": token}, format="json"
        )
        assert answer.status_code == 400, (uid, answer.content)
        assert "token" in answer.json()["errors"]


def test_reset_emails_to_one_mailbox_are_limited(db, django_capture_on_commit_callbacks):
    make_user("barbara@example.com")
    statuses = [
        ask_reset(
            "barbara@example.com", django_capture_on_commit_callbacks, address=f"10.0.1.{i}"
        ).status_code
        for i in range(6)
    ]
    assert statuses == [202] * 5 + [429]
    assert len(mail.outbox) == 5


@pytest.mark.parametrize("body", [{}, {"email": "not an email"}, {"email": ["x@example.com"]}])
def test_a_reset_request_names_its_bad_field(db, body):
    answer = browser().post("/api/v1/auth/password-reset/", body, format="json")
    assert answer.status_code == 400
    assert "email" in answer.json()["errors"]


@pytest.mark.time_machine(at(2026, 3, 10, 9, 0), tick=False)
def test_a_reset_from_a_browser_signed_in_as_the_same_person_signs_it_out_too(
    db, time_machine, django_capture_on_commit_callbacks
):
    make_user("edsger@example.com")
    here = signed_in("edsger@example.com")
    ask_reset("edsger@example.com", django_capture_on_commit_callbacks)
    parts = reset_parts(link_in_last_mail("edsger@example.com"))
    time_machine.move_to(at(2026, 3, 10, 9, 5), tick=False)  # the session is refreshed on the way
    done = here.post(
        "/api/v1/auth/password-reset/confirm/", {**parts, "password": NEW_PASSWORD}, format="json"
    )
    assert done.status_code == 200, done.content
    assert done.json()["sessions_ended"] == 1
    assert not is_signed_in(here)
