"""Two-factor sign-in: a person turns it on with an authenticator app (the codes computed here with
pyotp from the secret the enrolment gives, as the app would), then signs in with the password
and a code, or a recovery code that works once; a code is never accepted twice; wrong codes count
toward the lockout; turning it off takes the password and a code. An owner requires it of every
member: one without it sets it up at their next sign-in before anything else, while API tokens
go on as before. Every change and every second-factor sign-in is in the audit log."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pyotp
import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from rest_framework.test import APIClient

from core.encryption import decrypt_secret
from identity.models import MfaDevice, RecoveryCode, UserSession
from tenants.models import AuditEntry
from tenants.roles import Role
from tests.factories import PASSWORD, add_member, make_org, make_user

from .steps import actions, at, browser, is_signed_in, log_in, signed_in

NOW = at(2026, 3, 10, 9, 0)
pytestmark = pytest.mark.time_machine(NOW, tick=False)
STEP = timedelta(seconds=30)  # a TOTP code's time step


def code_at(secret: str, when: datetime) -> str:
    """What the authenticator app shows at `when`."""
    return pyotp.TOTP(secret).at(when)


def enrol(client: APIClient, when: datetime = NOW) -> tuple[str, list[str]]:
    """Turn two-factor sign-in on from the account page: the secret and the recovery codes."""
    started = client.post("/api/v1/auth/mfa/setup/")
    assert started.status_code == 200, started.content
    secret = started.json()["secret"]
    confirmed = client.post("/api/v1/auth/mfa/confirm/", {"code": code_at(secret, when)}, format="json")
    assert confirmed.status_code == 200, confirmed.content
    return secret, confirmed.json()["recovery_codes"]


def password_step(email: str, address: str = "10.0.0.1") -> APIClient:
    """A browser past the password of an account with two-factor sign-in: its code is due."""
    client = browser(address)
    answer = client.post("/api/v1/auth/login/", {"email": email, "password": PASSWORD}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json() == {
        "mfa_required": True,
        "detail": "Enter the 6-digit code from your authenticator app, or one of your recovery codes.",
    }
    return client


def verify(client: APIClient, code: str):
    return client.post("/api/v1/auth/mfa/verify/", {"code": code}, format="json")


def test_a_person_turns_on_two_factor_sign_in_and_signs_in_with_a_code(db, time_machine):
    org = make_org(make_user("ada@example.com"))
    laptop = signed_in("ada@example.com")
    assert laptop.get("/api/v1/auth/mfa/").json() == {
        "enabled": False,
        "enabled_at": None,
        "recovery_codes_left": 0,
        "required_by": [],
        "setup_required": False,
    }

    # The app's secret: as a QR code and as text; kept encrypted.
    started = laptop.post("/api/v1/auth/mfa/setup/").json()
    secret = started["secret"]
    assert started["otpauth_uri"] == pyotp.TOTP(secret).provisioning_uri(
        name="ada@example.com", issuer_name="Gateway Cloud"
    )
    assert started["qr_code"].startswith("data:image/svg+xml")
    stored = MfaDevice.objects.get(user__email="ada@example.com")
    assert secret not in stored.secret_ciphertext
    assert decrypt_secret(stored.secret_ciphertext) == secret
    # Not on until a first code from the app confirms it.
    assert laptop.get("/api/v1/auth/mfa/").json()["enabled"] is False
    wrong = laptop.post("/api/v1/auth/mfa/confirm/", {"code": "000000"}, format="json")
    assert wrong.status_code == 400
    assert wrong.json()["errors"] == {
        "code": ["This code is not valid: enter the 6-digit code your app shows now."]
    }

    confirmed = laptop.post("/api/v1/auth/mfa/confirm/", {"code": code_at(secret, NOW)}, format="json")
    assert confirmed.status_code == 200, confirmed.content
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    assert all(len(code) == 14 for code in codes)  # xxxx-xxxx-xxxx
    hashes = "".join(RecoveryCode.objects.values_list("code_hash", flat=True))
    assert not any(code.replace("-", "") in hashes for code in codes)  # stored hashed
    status = laptop.get("/api/v1/auth/mfa/").json()
    assert (status["enabled"], status["recovery_codes_left"]) == (True, 10)
    assert is_signed_in(laptop)  # this session goes on

    # Signing in elsewhere: the password alone opens nothing.
    phone = password_step("ada@example.com", address="10.0.0.2")
    assert not is_signed_in(phone)
    # The code the enrolment used, within its 30 seconds: refused (replayed).
    replayed = verify(phone, code_at(secret, NOW))
    assert replayed.status_code == 400
    assert replayed.json()["errors"]["code"] == [
        "This code is not valid: enter the current code from your authenticator app, or an unused recovery code."
    ]
    time_machine.move_to(NOW + STEP, tick=False)
    code = code_at(secret, NOW + STEP)
    answer = verify(phone, code)
    assert answer.status_code == 200, answer.content
    assert answer.json()["user"]["email"] == "ada@example.com"
    assert answer.json()["csrf_token"]
    assert is_signed_in(phone)
    # A second verify has nothing to complete; and the same code at another sign-in is refused.
    assert (
        verify(phone, code).json()["detail"]
        == "Your sign-in has expired: enter your email and password again."
    )
    assert verify(password_step("ada@example.com", address="10.0.0.3"), code).status_code == 400

    assert actions(org, "mfa.") == ["mfa.enable", "mfa.failure", "mfa.sign_in", "mfa.failure"]
    enabled = AuditEntry.objects.get(organization=org, action="mfa.enable")
    assert enabled.changes["after"] == {"method": "totp", "recovery_codes": 10}
    assert enabled.actor_email == "ada@example.com"
    signed = AuditEntry.objects.get(organization=org, action="mfa.sign_in")
    assert (signed.changes["after"], signed.ip_address) == ({"method": "totp"}, "10.0.0.2")
    failure = AuditEntry.objects.filter(organization=org, action="mfa.failure").order_by("id").first()
    assert failure.changes["after"] == {"reason": "wrong code", "during": "sign-in"}
    assert failure.actor_email == ""  # whoever typed it is not known to be Ada
    sign_in = AuditEntry.objects.filter(organization=org, action="user.sign_in").order_by("id").last()
    assert sign_in.changes["after"]["second_factor"] == "totp"
    assert UserSession.objects.filter(user__email="ada@example.com").count() == 2  # laptop, phone


def test_a_recovery_code_signs_in_once_and_new_ones_replace_the_old(db, time_machine):
    org = make_org(make_user("grace@example.com"))
    secret, codes = enrol(signed_in("grace@example.com"))

    # As typed from paper: upper case, spaces.
    client = password_step("grace@example.com")
    answer = verify(client, codes[0].upper().replace("-", " "))
    assert answer.status_code == 200, answer.content
    assert is_signed_in(client)
    used = AuditEntry.objects.get(organization=org, action="mfa.sign_in")
    assert used.changes["after"] == {"method": "recovery_code", "recovery_codes_left": 9}
    assert client.get("/api/v1/auth/mfa/").json()["recovery_codes_left"] == 9

    # Used once: never again.
    again = verify(password_step("grace@example.com", address="10.0.0.2"), codes[0])
    assert again.status_code == 400

    # New codes, a code given: the old ones stop working.
    time_machine.move_to(NOW + STEP, tick=False)
    refused = client.post("/api/v1/auth/mfa/recovery-codes/", {"code": "123456"}, format="json")
    assert refused.status_code == 400 and "code" in refused.json()["errors"]
    fresh = client.post(
        "/api/v1/auth/mfa/recovery-codes/", {"code": code_at(secret, NOW + STEP)}, format="json"
    )
    assert fresh.status_code == 200, fresh.content
    new_codes = fresh.json()["recovery_codes"]
    assert len(new_codes) == 10 and not set(new_codes) & set(codes)
    assert verify(password_step("grace@example.com", address="10.0.0.3"), codes[1]).status_code == 400
    assert verify(password_step("grace@example.com", address="10.0.0.4"), new_codes[1]).status_code == 200
    assert actions(org, "mfa.") == [
        "mfa.enable",
        "mfa.sign_in",
        "mfa.failure",
        "mfa.failure",
        "mfa.recovery_codes_regenerate",
        "mfa.failure",
        "mfa.sign_in",
    ]


def test_the_second_step_needs_a_recent_password(db, time_machine):
    make_org(make_user("linus@example.com"))
    secret, _ = enrol(signed_in("linus@example.com"))
    expired = "Your sign-in has expired: enter your email and password again."

    # No password given in this browser: nothing to complete.
    assert verify(browser(), code_at(secret, NOW + STEP)).json()["detail"] == expired

    # Given, but more than 5 minutes ago.
    client = password_step("linus@example.com")
    later = NOW + timedelta(minutes=5, seconds=30)
    time_machine.move_to(later, tick=False)
    answer = verify(client, code_at(secret, later))
    assert (answer.status_code, answer.json()["detail"]) == (400, expired)
    assert not is_signed_in(client)


def test_wrong_codes_count_toward_the_lockout(db, time_machine):
    org = make_org(make_user("ada@example.com"))
    secret, _ = enrol(signed_in("ada@example.com"))
    client = password_step("ada@example.com")
    answers = [verify(client, f"{guess:06d}") for guess in range(10)]
    assert [answer.status_code for answer in answers] == [400] * 10
    # The failure that locks says so, and the password must be given again after the lock.
    locked = answers[9].json()["detail"]
    assert locked.endswith(
        "Too many failed sign-ins for this account: try again after 09:15 UTC (in 15 min). "
        "Resetting your password unlocks your account."
    )

    # Locked: even the right password is refused, until the lock ends.
    time_machine.move_to(NOW + timedelta(minutes=1), tick=False)
    assert log_in(browser(), "ada@example.com") == 429
    later = NOW + timedelta(minutes=15, seconds=1)
    time_machine.move_to(later, tick=False)
    client = password_step("ada@example.com")
    assert verify(client, code_at(secret, later)).status_code == 200

    assert actions(org, "mfa.failure") == ["mfa.failure"] * 10
    assert AuditEntry.objects.get(organization=org, action="user.lock").changes["after"] == {
        "until": "2026-03-10T09:15:00+00:00"
    }


def test_wrong_codes_and_wrong_passwords_lock_together(db, time_machine):
    make_org(make_user("grace@example.com"))
    enrol(signed_in("grace@example.com"))
    client = password_step("grace@example.com")
    for guess in range(5):
        assert verify(client, f"{guess:06d}").status_code == 400
    for _ in range(4):
        assert log_in(browser("10.0.9.9"), "grace@example.com", "not the password") == 400
    # The tenth failure, a code: locked, and the code step is over.
    last = verify(client, "999999")
    assert "Too many failed sign-ins for this account" in last.json()["detail"]
    after_lock = verify(client, "999998")
    assert after_lock.json()["detail"] == "Your sign-in has expired: enter your email and password again."


def test_turning_it_off_takes_the_password_and_a_code(db, time_machine):
    org = make_org(make_user("ada@example.com"))
    client = signed_in("ada@example.com")
    secret, _ = enrol(client)
    time_machine.move_to(NOW + STEP, tick=False)
    code = code_at(secret, NOW + STEP)

    wrong_password = client.post(
        "/api/v1/auth/mfa/disable/", {"password": "nope", "code": code}, format="json"
    )
    assert wrong_password.json()["errors"] == {"password": ["The current password is wrong."]}
    wrong_code = client.post(
        "/api/v1/auth/mfa/disable/", {"password": PASSWORD, "code": "111111"}, format="json"
    )
    assert "code" in wrong_code.json()["errors"]
    # The code is still unused: a wrong password checked no code.
    off = client.post("/api/v1/auth/mfa/disable/", {"password": PASSWORD, "code": code}, format="json")
    assert off.status_code == 200, off.content
    assert client.get("/api/v1/auth/mfa/").json()["enabled"] is False
    assert not MfaDevice.objects.exists() and not RecoveryCode.objects.exists()

    # The password alone signs in again.
    again = browser().post(
        "/api/v1/auth/login/", {"email": "ada@example.com", "password": PASSWORD}, format="json"
    )
    assert again.json()["user"]["email"] == "ada@example.com"
    assert actions(org, "mfa.") == ["mfa.enable", "mfa.failure", "mfa.disable"]
    disabled = AuditEntry.objects.get(organization=org, action="mfa.disable")
    assert disabled.changes["after"] == {"confirmed_with": "totp"}
    failure = AuditEntry.objects.get(organization=org, action="mfa.failure")
    assert failure.changes["after"] == {"reason": "wrong code", "during": "disable"}


def test_an_owner_requires_it_and_a_member_without_it_sets_it_up_at_next_sign_in(db, time_machine):
    owner = make_user("owner@example.com")
    org = make_org(owner, name="Acme")
    add_member(org, Role.ADMIN, make_user("admin@example.com"))
    add_member(org, Role.DEVELOPER, make_user("dev@example.com"))
    policy = f"/api/v1/orgs/{org.slug}/mfa-policy/"

    # The developer's API token, made before.
    dev_before = signed_in("dev@example.com", address="10.0.0.5")
    token = dev_before.post(f"/api/v1/orgs/{org.slug}/tokens/", {"name": "ci"}, format="json").json()["token"]

    owner_client = signed_in("owner@example.com")
    assert owner_client.get(policy).json() == {"require_mfa": False, "members_without_mfa": 3}
    # An owner without two-factor sign-in cannot require it; an admin cannot at all.
    refused = owner_client.put(policy, {"require_mfa": True}, format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"] == {
        "require_mfa": ["Turn on two-factor sign-in for your own account first (Account page)."]
    }
    admin = signed_in("admin@example.com", address="10.0.0.6")
    assert admin.put(policy, {"require_mfa": True}, format="json").status_code == 403
    owner_secret, _ = enrol(owner_client)
    required = owner_client.put(policy, {"require_mfa": True}, format="json")
    assert required.status_code == 200, required.content
    assert required.json() == {"require_mfa": True, "members_without_mfa": 2}
    # An owner's API token cannot change it.
    owner_token = owner_client.post(
        f"/api/v1/orgs/{org.slug}/tokens/", {"name": "ops", "role_ceiling": "owner"}, format="json"
    ).json()["token"]
    bearer = APIClient(HTTP_AUTHORIZATION=f"Bearer {owner_token}")
    assert bearer.put(policy, {"require_mfa": False}, format="json").status_code == 403

    # Sessions signed in before go on; the next sign-in is held to the setup.
    assert dev_before.get(f"/api/v1/orgs/{org.slug}/").status_code == 200
    dev = signed_in("dev@example.com", address="10.0.0.7")
    held = dev.get(f"/api/v1/orgs/{org.slug}/")
    assert held.status_code == 403
    assert held.json() == {
        "detail": "Acme requires two-factor sign-in: set it up to go on.",
        "code": "mfa_setup_required",
    }
    for path in (f"/api/v1/orgs/{org.slug}/members/", "/api/v1/auth/sessions/", "/api/v1/orgs/"):
        assert dev.get(path).json().get("code") == "mfa_setup_required", path
    assert dev.post(f"/api/v1/orgs/{org.slug}/tokens/", {"name": "x"}, format="json").status_code == 403
    # What stays reachable: who they are, the setup, signing out.
    assert dev.get("/api/v1/auth/me/").status_code == 200
    status = dev.get("/api/v1/auth/mfa/").json()
    assert (status["setup_required"], status["required_by"]) == (True, ["Acme"])
    # Their API token is not concerned: MFA is for interactive sign-in.
    assert APIClient(HTTP_AUTHORIZATION=f"Bearer {token}").get(f"/api/v1/orgs/{org.slug}/").status_code == 200

    dev_secret, _ = enrol(dev)
    assert dev.get(f"/api/v1/orgs/{org.slug}/").status_code == 200
    assert owner_client.get(policy).json()["members_without_mfa"] == 1
    # Next time, the developer signs in with a code like everyone with it on.
    time_machine.move_to(NOW + STEP, tick=False)
    dev_again = password_step("dev@example.com", address="10.0.0.8")
    assert verify(dev_again, code_at(dev_secret, NOW + STEP)).status_code == 200
    assert dev_again.get(f"/api/v1/orgs/{org.slug}/").status_code == 200

    # Turning it off in a required organization: set up again before anything else.
    time_machine.move_to(NOW + 2 * STEP, tick=False)
    off = dev_again.post(
        "/api/v1/auth/mfa/disable/",
        {"password": PASSWORD, "code": code_at(dev_secret, NOW + 2 * STEP)},
        format="json",
    )
    assert off.status_code == 200, off.content
    assert dev_again.get(f"/api/v1/orgs/{org.slug}/").json()["code"] == "mfa_setup_required"
    assert dev_again.post("/api/v1/auth/logout/").status_code == 204

    # The owner stops requiring it: the admin signs in as before.
    assert owner_client.put(policy, {"require_mfa": False}, format="json").json()["require_mfa"] is False
    assert (
        signed_in("admin@example.com", address="10.0.0.9").get(f"/api/v1/orgs/{org.slug}/").status_code == 200
    )
    entries = AuditEntry.objects.filter(organization=org, action="organization.require_mfa").order_by("id")
    assert [entry.changes for entry in entries] == [
        {"before": {"require_mfa": False}, "after": {"require_mfa": True}},
        {"before": {"require_mfa": True}, "after": {"require_mfa": False}},
    ]
    assert entries.first().actor_email == "owner@example.com"
    assert owner_secret  # the owner's own sign-ins are covered by the tests above


def test_api_tokens_of_a_person_with_two_factor_sign_in_need_no_code(db):
    org = make_org(make_user("ada@example.com"))
    client = signed_in("ada@example.com")
    enrol(client)
    token = client.post(f"/api/v1/orgs/{org.slug}/tokens/", {"name": "ci"}, format="json").json()["token"]
    bearer = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert bearer.get(f"/api/v1/orgs/{org.slug}/").status_code == 200
    # Nor can a token manage the account's second factor.
    assert bearer.get("/api/v1/auth/mfa/").status_code == 403
    assert bearer.post("/api/v1/auth/mfa/setup/").status_code == 403


def test_the_authenticator_secrets_are_reencrypted_with_the_encryption_key(db, settings):
    make_org(make_user("ada@example.com"))
    make_user("nobody@example.com")  # in no organization: rotated all the same
    secret, _ = enrol(signed_in("ada@example.com"))
    loner_secret, _ = enrol(signed_in("nobody@example.com"))
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *settings.FIELD_ENCRYPTION_KEYS]
    call_command("rotate_encryption_key", stdout=io.StringIO())
    only_new = Fernet(new_key.encode())
    stored = {
        device.user.email: device.secret_ciphertext for device in MfaDevice.objects.select_related("user")
    }
    assert only_new.decrypt(stored["ada@example.com"].encode()).decode() == secret
    assert only_new.decrypt(stored["nobody@example.com"].encode()).decode() == loner_secret
