"""Two-factor sign-in: an authenticator app (TOTP, RFC 6238, through pyotp) and single-use
recovery codes; the organizations that require it of their members.

The TOTP secret is encrypted at rest (core.encryption) and shown once, at enrolment, as a QR code
(segno) and as text; enrolment is confirmed by a first valid code. A code is accepted one step
(30 s) either side of now, and never twice: the step of the last one accepted is kept, and that
code and every older one are refused. Recovery codes are stored hashed (tenants.credentials),
each usable once. Turning two-factor sign-in off takes the password and a code; new recovery
codes take a code.

The sign-in's second step is in services.py (`sign_in`, `verify_sign_in`): this module checks
codes, it opens no session."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno
from django.db import transaction
from django.http import HttpRequest
from pyotp.exceptions import OTPVerificationError

from core import clock
from core.api.client import client_ip
from core.encryption import RotationCount, decrypt_secret, encrypt_secret, reencrypted
from core.errors import InvalidInput
from tenants.audit import Actor, record_audit
from tenants.credentials import hash_secret
from tenants.models import Organization, User
from tenants.schemas import current_schema_name

from .audit import audit_user
from .models import MfaDevice, OrganizationMfaPolicy, RecoveryCode

ISSUER = "Gateway Cloud"
RECOVERY_CODE_COUNT = 10
# Crockford's base32: no I, L, O or U to misread. 12 characters: 60 bits each.
_RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_RECOVERY_LENGTH = 12
# A phone's clock may be a little off: the code of the step before or after now is accepted too.
VALID_WINDOW = 1
TOTP_PATTERN = re.compile(r"^\d{6}$")

WRONG_CODE = (
    "This code is not valid: enter the current code from your authenticator app, or an unused recovery code."
)
WRONG_PASSWORD = "The current password is wrong."

# In the session of a signed-in member who must set two-factor sign-in up before anything else
# (identity.middleware): set at sign-in, cleared once it is on.
SETUP_REQUIRED_KEY = "identity.mfa_setup_required"


# --- codes -----------------------------------------------------------------------------------


def _totp(device: MfaDevice) -> pyotp.TOTP:
    return pyotp.TOTP(decrypt_secret(device.secret_ciphertext))


def _normalized_recovery_code(code: str) -> str:
    return re.sub(r"[^0-9a-z]", "", code.lower())


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, _RECOVERY_LENGTH, 4))


def _accept_totp(device: MfaDevice, code: str, at: datetime) -> bool:
    """Whether `code` is the authenticator's code now, and not one used before; if so, it and
    every older code can no longer be used. `device` is locked (select_for_update) by the caller."""
    if not TOTP_PATTERN.match(code):
        return False
    try:
        step = _totp(device).verify_and_get_timecode(code, for_time=at, valid_window=VALID_WINDOW)
    except OTPVerificationError:
        return False
    if step <= device.last_used_step:  # this code, or a later one, was used already
        return False
    device.last_used_step = step
    device.save(update_fields=["last_used_step"])
    return True


def _use_recovery_code(user: User, code: str, at: datetime) -> bool:
    normalized = _normalized_recovery_code(code)
    if len(normalized) != _RECOVERY_LENGTH:
        return False
    # A conditional update: two requests with the same code cannot both use it.
    return bool(
        RecoveryCode.objects.filter(
            user=user, code_hash=hash_secret(normalized), used_at__isnull=True
        ).update(used_at=at)
    )


def _replace_recovery_codes(user: User) -> list[str]:
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.filter(user=user).delete()
    RecoveryCode.objects.bulk_create(
        RecoveryCode(user=user, code_hash=hash_secret(_normalized_recovery_code(code))) for code in codes
    )
    return codes


def _enabled_device(user: User, *, for_update: bool = False) -> MfaDevice | None:
    devices = MfaDevice.objects.filter(user=user, confirmed_at__isnull=False)
    if for_update:
        devices = devices.select_for_update()
    return devices.first()


def use_code(user: User, code: str) -> str | None:
    """Check a second factor of `user`: "totp" or "recovery_code" for the kind that was accepted
    (and is now used up), None when it is wrong, used, or the user has no two-factor sign-in."""
    code = code.strip().replace(" ", "")
    with transaction.atomic():
        device = _enabled_device(user, for_update=True)
        if device is None:
            return None
        now = clock.now()
        if TOTP_PATTERN.match(code):
            return "totp" if _accept_totp(device, code, now) else None
        return "recovery_code" if _use_recovery_code(user, code, now) else None


def recovery_codes_left(user: User) -> int:
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


# --- who has it, who must --------------------------------------------------------------------


def is_enabled(user: User) -> bool:
    return MfaDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


def organizations_requiring(user: User) -> list[Organization]:
    """The user's organizations that require two-factor sign-in, by name."""
    policies = OrganizationMfaPolicy.objects.filter(
        require_mfa=True,
        organization__memberships__user=user,
        organization__is_template=False,
    ).select_related("organization")
    return sorted((policy.organization for policy in policies), key=lambda org: (org.name, org.id))


def setup_required(user: User) -> bool:
    """Whether the user must turn two-factor sign-in on before doing anything else."""
    return not is_enabled(user) and bool(organizations_requiring(user))


def setup_required_message(user: User) -> str:
    names = [organization.name for organization in organizations_requiring(user)]
    if not names:
        return "Your organization requires two-factor sign-in: set it up to go on."
    if len(names) == 1:
        return f"{names[0]} requires two-factor sign-in: set it up to go on."
    return f"{', '.join(names[:-1])} and {names[-1]} require two-factor sign-in: set it up to go on."


def flag_setup_if_required(request: HttpRequest, user: User) -> None:
    """Remember in the session whether the user must set two-factor sign-in up first."""
    if setup_required(user):
        request.session[SETUP_REQUIRED_KEY] = True
    else:
        request.session.pop(SETUP_REQUIRED_KEY, None)


@dataclass(frozen=True)
class MfaStatus:
    enabled: bool
    enabled_at: datetime | None
    recovery_codes_left: int
    required_by: list[str]  # the names of the user's organizations that require it

    @property
    def setup_required(self) -> bool:
        return not self.enabled and bool(self.required_by)


def status_of(user: User) -> MfaStatus:
    device = _enabled_device(user)
    return MfaStatus(
        enabled=device is not None,
        enabled_at=device.confirmed_at if device else None,
        recovery_codes_left=recovery_codes_left(user) if device else 0,
        required_by=[organization.name for organization in organizations_requiring(user)],
    )


# --- enrolment -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str
    qr_code: str  # an SVG image, as a data: URI


@transaction.atomic
def start_enrolment(user: User) -> Enrolment:
    """A new secret for the user's authenticator app, to scan or type in; two-factor sign-in is
    on once `confirm_enrolment` gets a first code from it. Starting again replaces the secret."""
    if _enabled_device(user) is not None:
        raise InvalidInput(detail="Two-factor sign-in is already on: turn it off first to use another app.")
    secret = pyotp.random_base32()
    MfaDevice.objects.update_or_create(
        user=user,
        defaults={
            "secret_ciphertext": encrypt_secret(secret),
            "confirmed_at": None,
            "last_used_step": 0,
            "created_at": clock.now(),
        },
    )
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    qr_code = segno.make(uri, error="m").svg_data_uri(scale=5, border=2)
    return Enrolment(secret=secret, otpauth_uri=uri, qr_code=qr_code)


@transaction.atomic
def confirm_enrolment(request: HttpRequest, user: User, *, code: str) -> list[str]:
    """Turn two-factor sign-in on with a first code from the app: the recovery codes, shown
    this once."""
    device = MfaDevice.objects.select_for_update().filter(user=user).first()
    if device is None:
        raise InvalidInput(detail="Start the setup first: there is no authenticator app to confirm.")
    if device.confirmed_at is not None:
        raise InvalidInput(detail="Two-factor sign-in is already on.")
    if not _accept_totp(device, code.strip().replace(" ", ""), clock.now()):
        raise InvalidInput.field("code", "This code is not valid: enter the 6-digit code your app shows now.")
    device.confirmed_at = clock.now()
    device.save(update_fields=["confirmed_at"])
    codes = _replace_recovery_codes(user)
    request.session.pop(SETUP_REQUIRED_KEY, None)
    audit_user(
        user,
        "mfa.enable",
        actor=Actor(user=user, ip_address=client_ip(request)),
        after={"method": "totp", "recovery_codes": len(codes)},
    )
    return codes


def _refuse_wrong_code(request: HttpRequest, user: User, during: str) -> InvalidInput:
    audit_user(
        user,
        "mfa.failure",
        actor=Actor(user=user, ip_address=client_ip(request)),
        after={"reason": "wrong code", "during": during},
    )
    return InvalidInput.field("code", WRONG_CODE)


def disable(request: HttpRequest, user: User, *, password: str, code: str) -> None:
    """Turn two-factor sign-in off: the password and a code (from the app, or a recovery code)
    both given. A member of an organization that requires it must set it up again at once."""
    if not user.check_password(password):
        raise InvalidInput.field("password", WRONG_PASSWORD)
    with transaction.atomic():
        if _enabled_device(user, for_update=True) is None:
            raise InvalidInput(detail="Two-factor sign-in is not on.")
        method = use_code(user, code)
        if method is not None:
            MfaDevice.objects.filter(user=user).delete()
            RecoveryCode.objects.filter(user=user).delete()
            audit_user(
                user,
                "mfa.disable",
                actor=Actor(user=user, ip_address=client_ip(request)),
                after={"confirmed_with": method},
            )
    if method is None:
        raise _refuse_wrong_code(request, user, "disable")
    flag_setup_if_required(request, user)


def regenerate_recovery_codes(request: HttpRequest, user: User, *, code: str) -> list[str]:
    """New recovery codes, a code given; the old ones stop working."""
    with transaction.atomic():
        if _enabled_device(user, for_update=True) is None:
            raise InvalidInput(detail="Two-factor sign-in is not on.")
        method = use_code(user, code)
        if method is not None:
            codes = _replace_recovery_codes(user)
            audit_user(
                user,
                "mfa.recovery_codes_regenerate",
                actor=Actor(user=user, ip_address=client_ip(request)),
                after={"confirmed_with": method, "recovery_codes": len(codes)},
            )
            return codes
    raise _refuse_wrong_code(request, user, "recovery codes")


# --- an organization's requirement -----------------------------------------------------------


@dataclass(frozen=True)
class MfaPolicy:
    require_mfa: bool
    members_without_mfa: int


def policy_of(organization: Organization) -> MfaPolicy:
    policy = OrganizationMfaPolicy.objects.filter(organization=organization).first()
    without = (
        User.objects.filter(memberships__organization=organization)
        .exclude(id__in=MfaDevice.objects.filter(confirmed_at__isnull=False).values("user_id"))
        .count()
    )
    return MfaPolicy(require_mfa=bool(policy and policy.require_mfa), members_without_mfa=without)


@transaction.atomic
def set_requirement(actor: Actor, organization: Organization, *, require_mfa: bool) -> MfaPolicy:
    """Require two-factor sign-in of every member, or stop requiring it (owners: the view checks).
    Whoever turns it on must have it: they would otherwise be the first one stopped. Members
    without it are asked to set it up at their next sign-in."""
    if require_mfa and (actor.user is None or not is_enabled(actor.user)):
        raise InvalidInput.field(
            "require_mfa", "Turn on two-factor sign-in for your own account first (Account page)."
        )
    policy, _ = OrganizationMfaPolicy.objects.select_for_update().get_or_create(
        organization=organization, defaults={"updated_at": clock.now()}
    )
    if policy.require_mfa != require_mfa:
        before = policy.require_mfa
        policy.require_mfa = require_mfa
        policy.updated_at = clock.now()
        policy.save(update_fields=["require_mfa", "updated_at"])
        record_audit(
            actor,
            organization,
            "organization.require_mfa",
            organization,
            before={"require_mfa": before},
            after={"require_mfa": require_mfa},
        )
    return policy_of(organization)


# --- the encryption key's rotation -----------------------------------------------------------


def rotate_secrets() -> RotationCount:
    """Re-encrypt, under the first key, the authenticator secrets of the members of the
    organization whose schema is active (`manage.py rotate_encryption_key` runs this in each),
    and of people in no organization: each secret is re-encrypted once, then counted current."""
    count = RotationCount()
    schema = current_schema_name()
    devices = MfaDevice.objects.filter(user__memberships__organization__schema_name=schema).union(
        MfaDevice.objects.filter(user__memberships__isnull=True)
    )
    for device_id, ciphertext in [(device.pk, device.secret_ciphertext) for device in devices]:
        new = reencrypted(ciphertext)
        if new is None:
            count.current += 1
        else:
            count.rotated += MfaDevice.objects.filter(pk=device_id, secret_ciphertext=ciphertext).update(
                secret_ciphertext=new
            )
    return count
