"""Password guessing: slowed by the throttle, then locked for a while, per account and per
address, with a message saying until when; a password reset unlocks the account. Every failure
at a known account is in its organizations' audit logs; at an unknown address, only in the
server's log."""

from datetime import timedelta

import pytest
from django.core.cache import cache

from tenants.models import AuditEntry
from tests.factories import PASSWORD, make_org, make_user

from .steps import actions, at, browser, link_in_last_mail, reset_parts

NOW = at(2026, 3, 10, 9, 0)
pytestmark = pytest.mark.time_machine(NOW, tick=False)


WRONG = "wrong guess"


def attempt(email: str, password: str = WRONG, address: str = "10.0.0.1"):
    return browser(address).post("/api/v1/auth/login/", {"email": email, "password": password}, format="json")


def test_ten_failures_lock_the_account_and_say_until_when(db, time_machine):
    org = make_org(make_user("ada@example.com"))
    answers = [attempt("ada@example.com") for _ in range(10)]
    assert [answer.status_code for answer in answers] == [400] * 10
    assert answers[0].json()["detail"] == "Email or password is wrong."
    # The failure that locks says so.
    assert answers[9].json()["detail"] == (
        "Email or password is wrong. Too many failed sign-ins for this account: try again after "
        "09:15 UTC (in 15 min). Resetting your password unlocks your account."
    )

    # Within the throttle's minute, and after it: refused, even the right password, until when.
    for minutes in (0, 2):
        time_machine.move_to(NOW + timedelta(minutes=minutes), tick=False)
        locked = attempt("ada@example.com", PASSWORD)
        assert locked.status_code == 429, locked.content
        assert locked.json()["detail"].startswith(
            "Too many failed sign-ins for this account: try again after 09:15 UTC"
        )
        assert int(locked["Retry-After"]) == (15 - minutes) * 60
    assert f"(in {15 - 2} min)" in locked.json()["detail"]

    time_machine.move_to(NOW + timedelta(minutes=15, seconds=1), tick=False)
    assert attempt("ada@example.com", PASSWORD).status_code == 200

    # The attempt the throttle stopped checked no password: not a failure of its own.
    failed, lock, sign_in = "user.sign_in_failed", "user.lock", "user.sign_in"
    assert actions(org, "user.") == [failed] * 10 + [lock, failed, sign_in]
    lock = AuditEntry.objects.get(organization=org, action="user.lock")
    assert (lock.actor_email, lock.ip_address, lock.target_repr) == ("", "10.0.0.1", "ada@example.com")
    assert lock.changes["after"] == {"until": "2026-03-10T09:15:00+00:00"}
    assert AuditEntry.objects.filter(organization=org, action="user.sign_in_failed").first().changes == {
        "after": {"reason": "locked"}
    }


def test_failures_at_one_account_from_many_addresses_lock_the_account(db):
    make_user("grace@example.com")
    for i in range(10):
        attempt("grace@example.com", address=f"10.0.1.{i}")
    locked = attempt("grace@example.com", PASSWORD, address="10.0.2.1")
    assert locked.status_code == 429
    assert "for this account" in locked.json()["detail"]


def test_failures_from_one_address_at_many_accounts_lock_the_address(db, time_machine, caplog):
    make_user("linus@example.com")
    for i in range(10):
        cache.clear()  # past the throttle: the lock is what is tested
        attempt(f"guess{i}@example.com", address="10.0.3.3")
    cache.clear()
    locked = attempt("linus@example.com", PASSWORD, address="10.0.3.3")
    assert locked.status_code == 429
    assert (
        locked.json()["detail"]
        == "Too many failed sign-ins from your address: try again after 09:15 UTC (in 15 min)."
    )
    # Another address is not locked, and neither is the account.
    assert attempt("linus@example.com", PASSWORD, address="10.0.3.4").status_code == 200

    # Failures at addresses with no account: in the server's log, in no audit log.
    assert "guess3@example.com" in caplog.text
    assert not AuditEntry.objects.filter(action__startswith="user.sign_in_failed").exists()


def test_a_password_reset_unlocks_the_account(db, time_machine, django_capture_on_commit_callbacks):
    make_user("ken@example.com")
    for i in range(10):
        attempt("ken@example.com", address=f"10.0.4.{i}")
    assert attempt("ken@example.com", PASSWORD, address="10.0.5.1").status_code == 429

    with django_capture_on_commit_callbacks(execute=True):
        browser("10.0.5.1").post("/api/v1/auth/password-reset/", {"email": "ken@example.com"}, format="json")
    parts = reset_parts(link_in_last_mail("ken@example.com"))
    reset = browser("10.0.5.1").post(
        "/api/v1/auth/password-reset/confirm/", {**parts, "password": "ken's new passphrase"}, format="json"
    )
    assert reset.status_code == 200, reset.content

    time_machine.move_to(NOW + timedelta(minutes=1, seconds=1), tick=False)  # past the throttle's minute
    assert attempt("ken@example.com", "ken's new passphrase", address="10.0.5.1").status_code == 200
