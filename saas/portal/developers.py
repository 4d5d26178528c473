"""Portal developers: their own accounts in each organization's schema, apart from the console's
users. Sign-up (open, by invitation, or pending the team's approval), email verification,
sign-in with its own sessions (a cookie scoped to the portal) and lockout, password reset, and
the team's approve / reject / suspend / reinstate.

Links are Django's signed tokens: the reset token hashes the password, so it works once; both
carry the organization, so a link of one portal is nothing in another."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from core import clock
from core.celery import enqueue_on_commit
from core.errors import Forbidden, InvalidInput
from saas.gateways.services import Author, GatewayCluster
from tenants.audit import Actor, record_audit
from tenants.models import Organization
from tenants.schemas import current_schema_name

from . import enforcement
from .models import (
    Application,
    DeveloperInvitation,
    DeveloperStatus,
    PortalDeveloper,
    PortalSession,
    SignupMode,
    save_unique,
)
from .products import portal_settings

SESSION_DAYS = 14
INVITATION_DAYS = 7
VERIFICATION_SECONDS = 48 * 3600
LOCK_FAILURES = 10
LOCK_SECONDS = 15 * 60
_VERIFY_SALT = "saas.portal.email-verification"


class _ResetTokens(PasswordResetTokenGenerator):
    key_salt = "saas.portal.password-reset"

    def _make_hash_value(self, user: PortalDeveloper, timestamp: int) -> str:  # type: ignore[override]
        return f"{current_schema_name()}{user.pk}{user.password}{timestamp}{user.email}"

    def _now(self) -> datetime:
        return clock.now().replace(tzinfo=None)


reset_tokens = _ResetTokens()


def developer_actor(developer: PortalDeveloper | None, ip_address: str | None, email: str = "") -> Actor:
    return Actor(user=None, ip_address=ip_address, name=f"portal:{developer.email if developer else email}")


def developer_author(
    organization: Organization, developer: PortalDeveloper, ip_address: str | None
) -> Author:
    return Author(actor=developer_actor(developer, ip_address), organization=organization)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def clean_text(value: str, field: str, max_length: int, *, required: bool = False) -> str:
    """Form text as stored: trimmed, within its length, no NUL (PostgreSQL takes none)."""
    value = value.strip()
    if "\x00" in value:
        raise InvalidInput.field(field, "This text has a character that cannot be stored.")
    if len(value) > max_length:
        raise InvalidInput.field(field, f"At most {max_length} characters.")
    if required and not value:
        raise InvalidInput.field(field, "Required.")
    return value


def clean_email(value: str) -> str:
    """One form of an address for every lookup, lock counter and row: trimmed, lower case."""
    email = clean_text(value, "email", 254, required=True).lower()
    try:
        validate_email(email)
    except DjangoValidationError:
        raise InvalidInput.field("email", "Enter an email address such as dev@example.com.") from None
    return email


def _check_password(password: str, developer: PortalDeveloper, field: str = "password") -> None:
    try:
        validate_password(password, developer)  # type: ignore[arg-type]  # any object with attributes
    except DjangoValidationError as exc:
        raise InvalidInput.field(field, " ".join(exc.messages)) from None


# --- sign-up and verification ------------------------------------------------------------------


@transaction.atomic
def sign_up(
    organization: Organization,
    *,
    email: str,
    name: str,
    password: str,
    invitation: str | None,
    ip_address: str | None,
) -> PortalDeveloper:
    """A new developer, to verify their email before signing in. Open portals make them active;
    approval portals pending; invitation portals need an unexpired invitation for this email."""
    settings_ = portal_settings()
    email = clean_email(email)
    name = clean_text(name, "name", 100)
    invited: DeveloperInvitation | None = None
    if settings_.signup_mode == SignupMode.INVITATION:
        invited = (
            DeveloperInvitation.objects.select_for_update()
            .filter(
                token_sha256=_digest(invitation or ""), accepted_at__isnull=True, expires_at__gt=clock.now()
            )
            .first()
        )
        if invited is None or invited.email.lower() != email:
            raise InvalidInput.field(
                "invitation", "Signing up here needs an invitation sent to this email address."
            )
    if PortalDeveloper.objects.filter(email__iexact=email).exists():
        raise InvalidInput.field(
            "email", "An account with this email exists: sign in, or reset its password."
        )
    status = (
        DeveloperStatus.PENDING if settings_.signup_mode == SignupMode.APPROVAL else DeveloperStatus.ACTIVE
    )
    developer = PortalDeveloper(email=email, name=name, status=status)
    _check_password(password, developer)
    developer.set_password(password)
    # The same address, signed up at the same moment, is refused as one signed up before.
    save_unique(developer, "email", "An account with this email exists: sign in, or reset its password.")
    if invited is not None:
        invited.accepted_at = clock.now()
        invited.save(update_fields=["accepted_at"])
    record_audit(
        developer_actor(developer, ip_address),
        organization,
        "portal.developer.signup",
        developer,
        after={"email": email, "status": status},
    )
    send_verification(organization, developer)
    return developer


def send_verification(organization: Organization, developer: PortalDeveloper) -> None:
    from . import tasks

    enqueue_on_commit(
        "portal verification email",
        lambda: tasks.send_portal_email.delay(
            organization.schema_name, organization.slug, developer.pk, "verify"
        ),
    )


def verification_token(organization: Organization, developer: PortalDeveloper) -> str:
    return signing.dumps({"o": organization.slug, "d": developer.pk, "e": developer.email}, salt=_VERIFY_SALT)


@transaction.atomic
def verify_email(organization: Organization, token: str, *, ip_address: str | None) -> PortalDeveloper:
    try:
        data = signing.loads(token, salt=_VERIFY_SALT, max_age=VERIFICATION_SECONDS)
    except signing.SignatureExpired:
        raise InvalidInput.field("token", "This link has expired: sign in to get a new one.") from None
    except signing.BadSignature:
        raise InvalidInput.field("token", "This link is not valid.") from None
    developer = PortalDeveloper.objects.select_for_update().filter(pk=data.get("d")).first()
    if data.get("o") != organization.slug or developer is None or developer.email != data.get("e"):
        raise InvalidInput.field("token", "This link is not valid.")
    if developer.email_verified_at is None:
        developer.email_verified_at = clock.now()
        developer.save(update_fields=["email_verified_at"])
        record_audit(
            developer_actor(developer, ip_address), organization, "portal.developer.verify", developer
        )
    return developer


# --- invitations -------------------------------------------------------------------------------


@transaction.atomic
def invite_developer(author: Author, email: str) -> str:
    """Email an invitation to sign up; returns its link."""
    email = clean_email(email)
    if PortalDeveloper.objects.filter(email__iexact=email).exists():
        raise InvalidInput.field("email", "A developer with this email has signed up already.")
    secret = secrets.token_urlsafe(24)
    invitation = DeveloperInvitation.objects.create(
        email=email,
        token_sha256=_digest(secret),
        invited_by=author.label,
        expires_at=clock.now() + timedelta(days=INVITATION_DAYS),
    )
    record_audit(
        author.actor, author.organization, "portal.developer.invite", invitation, after={"email": email}
    )
    link = f"{portal_url(author.organization)}signup?invitation={secret}"
    from . import tasks

    enqueue_on_commit(
        "portal invitation email",
        lambda: tasks.send_portal_invitation.delay(author.organization.slug, email, link),
    )
    return link


def portal_url(organization: Organization) -> str:
    host = portal_settings().custom_host
    if host:
        scheme = "https" if settings.PUBLIC_URL.startswith("https") else "http"
        return f"{scheme}://{host}/"
    return f"{settings.PUBLIC_URL}/portal/{organization.slug}/"


# --- sessions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    developer: PortalDeveloper
    session: PortalSession
    cookie: str | None = None  # the new session's secret, to set in the cookie


def _lock_key(organization: Organization, what: str) -> str:
    return f"portal:signin:{organization.schema_name}:{hashlib.sha256(what.encode()).hexdigest()[:32]}"


def _failures(organization: Organization, email: str, ip_address: str | None) -> list[str]:
    keys = [_lock_key(organization, email.lower())]
    if ip_address:
        keys.append(_lock_key(organization, f"ip:{ip_address}"))
    return keys


def sign_in(
    organization: Organization, *, email: str, password: str, ip_address: str | None, user_agent: str
) -> SignedIn:
    email = clean_text(email, "email", 254).lower()
    keys = _failures(organization, email, ip_address)
    if any((cache.get(key) or 0) >= LOCK_FAILURES for key in keys):
        raise Forbidden(f"Too many failed sign-ins: try again in {LOCK_SECONDS // 60} minutes.")
    developer = PortalDeveloper.objects.filter(email=email).first() if email else None
    if developer is None:
        make_password(password)  # as long as a real check: the answer's time tells nothing
    if developer is None or not developer.check_password(password):
        for key in keys:
            cache.add(key, 0, LOCK_SECONDS)
            try:
                cache.incr(key)
            except ValueError:
                cache.set(key, 1, LOCK_SECONDS)
        record_audit(
            developer_actor(developer, ip_address, email),
            organization,
            "portal.developer.signin_failed",
            developer or organization,
        )
        raise InvalidInput.field("password", "The email or the password is wrong.")
    if developer.email_verified_at is None:
        send_verification(organization, developer)
        raise Forbidden("Confirm your email address first: we have sent you the link again.")
    if developer.status == DeveloperStatus.REJECTED:
        raise Forbidden("Your sign-up was not approved.")
    if developer.status == DeveloperStatus.SUSPENDED:
        raise Forbidden("Your account is suspended: contact the team that runs this portal.")
    secret = secrets.token_urlsafe(32)
    now = clock.now()
    session = PortalSession.objects.create(
        developer=developer,
        key_sha256=_digest(secret),
        csrf_token=secrets.token_urlsafe(24),
        last_seen_at=now,
        expires_at=now + timedelta(days=SESSION_DAYS),
        user_agent=user_agent[:300],
        ip_address=ip_address,
    )
    developer.last_login = now
    developer.save(update_fields=["last_login"])
    record_audit(developer_actor(developer, ip_address), organization, "portal.developer.signin", developer)
    return SignedIn(developer, session, secret)


def session_of(cookie: str | None) -> SignedIn | None:
    """The signed-in developer of a session cookie, while the session lasts."""
    if not cookie:
        return None
    now = clock.now()
    session = (
        PortalSession.objects.select_related("developer")
        .filter(key_sha256=_digest(cookie), expires_at__gt=now)
        .first()
    )
    if session is None or session.developer.status in (DeveloperStatus.SUSPENDED, DeveloperStatus.REJECTED):
        return None
    if now - session.last_seen_at > timedelta(minutes=1):
        PortalSession.objects.filter(pk=session.pk).update(last_seen_at=now)
    return SignedIn(session.developer, session)


def sign_out(session: PortalSession) -> None:
    session.delete()


# --- password reset ----------------------------------------------------------------------------


def request_password_reset(organization: Organization, email: str) -> None:
    """Emails a single-use link if a developer has this address; says nothing either way."""
    try:
        developer = PortalDeveloper.objects.filter(email=clean_email(email)).first()
    except InvalidInput:
        return
    if developer is None:
        return
    from . import tasks

    enqueue_on_commit(
        "portal reset email",
        lambda: tasks.send_portal_email.delay(
            organization.schema_name, organization.slug, developer.pk, "reset"
        ),
    )


def reset_link(organization: Organization, developer: PortalDeveloper) -> str:
    uid = urlsafe_base64_encode(force_bytes(developer.pk))
    token = reset_tokens.make_token(developer)  # type: ignore[arg-type]
    return f"{portal_url(organization)}reset/{uid}/{token}"


def developer_of_reset(uid: str, token: str) -> PortalDeveloper | None:
    try:
        pk = int(force_str(urlsafe_base64_decode(uid)))
    except (TypeError, ValueError, OverflowError, UnicodeDecodeError):
        return None
    developer = PortalDeveloper.objects.filter(pk=pk).first() if 0 < pk < 2**63 else None
    if developer is None or not reset_tokens.check_token(developer, token):  # type: ignore[arg-type]
        return None
    return developer


@transaction.atomic
def reset_password(
    organization: Organization, *, uid: str, token: str, password: str, ip_address: str | None
) -> PortalDeveloper:
    """A new password from a reset link: the link then stops working, and every session ends."""
    developer = developer_of_reset(uid, token)
    if developer is None:
        raise InvalidInput.field("token", "This link has expired or was used already: ask for a new one.")
    _check_password(password, developer)
    developer.set_password(password)
    # Following the emailed link proves the address too.
    developer.email_verified_at = developer.email_verified_at or clock.now()
    developer.save(update_fields=["password", "email_verified_at"])
    PortalSession.objects.filter(developer=developer).delete()
    for key in _failures(organization, developer.email, None):
        cache.delete(key)
    record_audit(
        developer_actor(developer, ip_address), organization, "portal.developer.password_reset", developer
    )
    return developer


# --- the team's decisions ----------------------------------------------------------------------

_DECISIONS = {
    "approve": ({DeveloperStatus.PENDING, DeveloperStatus.REJECTED}, DeveloperStatus.ACTIVE),
    "reject": ({DeveloperStatus.PENDING}, DeveloperStatus.REJECTED),
    "suspend": ({DeveloperStatus.ACTIVE}, DeveloperStatus.SUSPENDED),
    "reinstate": ({DeveloperStatus.SUSPENDED}, DeveloperStatus.ACTIVE),
}


@transaction.atomic
def decide_developer(author: Author, developer: PortalDeveloper, decision: str) -> PortalDeveloper:
    """approve / reject a pending developer, suspend / reinstate an active one: a suspended
    developer's applications stop working at the gateway, and its sessions end."""
    allowed_from, to = _DECISIONS[decision]
    developer = PortalDeveloper.objects.select_for_update().get(pk=developer.pk)
    if developer.status not in allowed_from:
        raise InvalidInput.field("status", f"A developer who is {developer.status} cannot be {decision}d.")
    before = developer.status
    developer.status = to
    developer.save(update_fields=["status"])
    if to in (DeveloperStatus.SUSPENDED, DeveloperStatus.REJECTED):
        PortalSession.objects.filter(developer=developer).delete()
    changed: dict[int, GatewayCluster] = {}
    for application in Application.objects.filter(developer=developer).select_related("developer"):
        changed.update(enforcement.sync_application(author, application))
    enforcement.publish_clusters(
        author, changed, f"portal developer {developer.email} {decision}d", ["consumers"]
    )
    record_audit(
        author.actor,
        author.organization,
        f"portal.developer.{decision}",
        developer,
        before={"status": before},
        after={"status": to},
    )
    return developer
