"""The identity facade: signing in and out, sessions, lockout, password reset and change, email
verification and change. Views and other apps call these functions; every event lands in the
audit log of each organization the user is a member of (a failure at an unknown address only in
the server's log).

Signing in is two steps, so that a second factor can go between them: `check_password` proves
the password (lockout, failures recorded), `complete_sign_in` opens the session. `sign_in` is
both, for the login view; when the user has two-factor sign-in on, it stops after the password
and `verify_sign_in` completes it with a code (identity.mfa)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare

from core import clock
from core.api.client import client_ip
from core.celery import enqueue_on_commit
from core.errors import Forbidden, InvalidInput, NotFound
from tenants.audit import Actor
from tenants.models import User

from . import links, lockout, mfa, sessions, tasks
from .audit import audit_user as _audit
from .lockout import SignInLocked
from .models import EmailVerification, UserSession

logger = logging.getLogger(__name__)

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
WRONG_CREDENTIALS = "Email or password is wrong."
WRONG_PASSWORD = "The current password is wrong."
RESET_LINK_INVALID = "This link has expired or was already used: ask for a new one."


def _enqueue(task: Any, *args: Any) -> None:
    enqueue_on_commit(task.name, lambda: task.delay(*args))


def _validate_new_password(password: str, user: User, field: str) -> None:
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise InvalidInput({field: list(exc.messages)}, detail=exc.messages[0]) from exc


# --- signing in and out ----------------------------------------------------------------------


def sign_in(request: HttpRequest, *, email: str, password: str) -> User | None:
    """Password sign-in, from the password to the open session: the user signed in, or None
    when their second factor is due (two-factor sign-in is on): the session then holds only that
    the password was right, for a few minutes, and `verify_sign_in` opens it with a code. A member
    of an organization that signs in with SSO only (not an owner there) is refused (403)."""
    user = check_password(request, email=email, password=password)
    # Imported here: sso signs people in through this module.
    from sso.services import password_sign_in_refused

    refused = password_sign_in_refused(user)
    if refused:
        raise Forbidden(refused)
    if mfa.is_enabled(user):
        _remember_password_proven(request, user)
        return None
    complete_sign_in(request, user, method="password")
    return user


def raise_if_locked(request: HttpRequest, email: str) -> None:
    """SignInLocked (429, saying until when) while signing in as `email` from here is locked."""
    lock = lockout.current_lock(request, email.strip().lower())
    if lock is not None:
        raise SignInLocked(lock)


def check_password(request: HttpRequest, *, email: str, password: str) -> User:
    """The user whose email and password these are. A wrong pair is refused (400), and so is
    any attempt while the account or the address is locked (429, SignInLocked); the failure
    that locks says so."""
    email = email.strip().lower()
    ip_address = client_ip(request)
    lock = lockout.current_lock(request, email)
    if lock is not None:
        _sign_in_failed(email, ip_address, "locked")
        raise SignInLocked(lock)
    # Through django-axes' backend: the failure is counted (user_login_failed) and the one that
    # reaches the limit flags the request.
    user = authenticate(request, username=email, password=password)
    if isinstance(user, User):
        return user
    just_locked = bool(getattr(request, "axes_locked_out", False))
    request.axes_locked_out = False  # type: ignore[attr-defined]  # answered here, not by AxesMiddleware
    lock = lockout.current_lock(request, email) if just_locked else None
    _sign_in_failed(email, ip_address, "wrong password", lock)
    raise InvalidInput(detail=f"{WRONG_CREDENTIALS} {lock.message()}" if lock else WRONG_CREDENTIALS)


def _sign_in_failed(
    email: str, ip_address: str | None, reason: str, lock: lockout.Lock | None = None
) -> None:
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        # Nobody's account: no organization's business, only the server's.
        logger.warning("Failed sign-in as unknown %s from %s (%s)", email, ip_address, reason)
        return
    # Whoever tried is not known to be the user.
    actor = Actor(user=None, ip_address=ip_address)
    _audit(user, "user.sign_in_failed", actor=actor, after={"reason": reason})
    if lock is not None and lock.of_account:
        _audit(user, "user.lock", actor=actor, after={"until": lock.until.isoformat()})


def complete_sign_in(
    request: HttpRequest, user: User, *, method: str, second_factor: str | None = None
) -> None:
    """Open a session for a user who proved who they are; `method` says how (password, signup,
    invitation, sso), `second_factor` with what code besides (totp, recovery_code). A member
    of an organization that requires two-factor sign-in, without it, must set it up before
    anything else (identity.middleware); not after single sign-on, where the provider does."""
    request.session.pop(MFA_PENDING_KEY, None)
    login(request, user, backend=getattr(user, "backend", None) or MODEL_BACKEND)
    session = sessions.track(request, user, method)
    if method != "sso":
        mfa.flag_setup_if_required(request, user)
    after = {"method": method, "device": str(sessions.device_of(session.user_agent))}
    if second_factor:
        after["second_factor"] = second_factor
    _audit(user, "user.sign_in", actor=Actor(user=user, ip_address=session.ip_address), after=after)


# --- the second step: a code from the authenticator app, or a recovery code --------------------

# In the session between a right password and the code, for MFA_PENDING_SECONDS: whose password
# it was (and its hash: a password changed meanwhile voids it). Nothing is signed in until then.
MFA_PENDING_KEY = "identity.mfa_pending"
MFA_PENDING_SECONDS = 300
MFA_CODE_NEEDED = "Enter the 6-digit code from your authenticator app, or one of your recovery codes."
MFA_SIGN_IN_EXPIRED = "Your sign-in has expired: enter your email and password again."


def _remember_password_proven(request: HttpRequest, user: User) -> None:
    request.session[MFA_PENDING_KEY] = {
        "user_id": user.pk,
        "auth_hash": user.get_session_auth_hash(),
        "until": clock.now().timestamp() + MFA_PENDING_SECONDS,
    }


def _password_proven(request: HttpRequest) -> User:
    """The user whose password this session proved, while their code is due; 400 otherwise."""
    pending = request.session.get(MFA_PENDING_KEY)
    if not isinstance(pending, dict) or float(pending.get("until", 0)) < clock.now().timestamp():
        request.session.pop(MFA_PENDING_KEY, None)
        raise InvalidInput(detail=MFA_SIGN_IN_EXPIRED)
    user_id = pending.get("user_id")
    user = User.objects.filter(pk=user_id, is_active=True).first() if isinstance(user_id, int) else None
    if user is None or not constant_time_compare(str(pending.get("auth_hash")), user.get_session_auth_hash()):
        request.session.pop(MFA_PENDING_KEY, None)
        raise InvalidInput(detail=MFA_SIGN_IN_EXPIRED)
    return user


def raise_if_second_step_locked(request: HttpRequest) -> None:
    """SignInLocked while the account whose code this session awaits is locked."""
    pending = request.session.get(MFA_PENDING_KEY)
    user_id = pending.get("user_id") if isinstance(pending, dict) else None
    user = User.objects.filter(pk=user_id).first() if isinstance(user_id, int) else None
    if user is not None:
        raise_if_locked(request, user.email)


def verify_sign_in(request: HttpRequest, *, code: str) -> User:
    """The sign-in's second step, after `sign_in` answered that a code is due: with a code from
    the authenticator app or a recovery code (used up), the session opens. A wrong code counts
    toward the lockout as a wrong password does; the failure that locks says so, and the
    password must then be given again."""
    user = _password_proven(request)
    email = user.email.lower()
    ip_address = client_ip(request)
    actor = Actor(user=None, ip_address=ip_address)  # not yet known to be the user
    lock = lockout.current_lock(request, email)
    if lock is not None:
        request.session.pop(MFA_PENDING_KEY, None)
        _audit(user, "mfa.failure", actor=actor, after={"reason": "locked", "during": "sign-in"})
        raise SignInLocked(lock)
    method = mfa.use_code(user, code)
    if method is None:
        lock = lockout.record_failure(request, email)
        _audit(user, "mfa.failure", actor=actor, after={"reason": "wrong code", "during": "sign-in"})
        if lock is not None:
            request.session.pop(MFA_PENDING_KEY, None)
            if lock.of_account:
                _audit(user, "user.lock", actor=actor, after={"until": lock.until.isoformat()})
            raise InvalidInput.field("code", f"{mfa.WRONG_CODE} {lock.message()}")
        raise InvalidInput.field("code", mfa.WRONG_CODE)
    complete_sign_in(request, user, method="password", second_factor=method)
    after: dict[str, Any] = {"method": method}
    if method == "recovery_code":
        after["recovery_codes_left"] = mfa.recovery_codes_left(user)
    _audit(user, "mfa.sign_in", actor=Actor(user=user, ip_address=ip_address), after=after)
    return user


def sign_out(request: HttpRequest) -> None:
    key = request.session.session_key
    logout(request)
    sessions.forget(key)


# --- sessions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionInfo:
    id: int
    device: str
    user_agent: str
    ip_address: str | None
    method: str
    signed_in_at: datetime
    last_seen_at: datetime
    current: bool


def sessions_of(request: HttpRequest, user: User) -> list[SessionInfo]:
    """The user's sessions that still work, most recently seen first."""
    current = request.session.session_key
    return [
        SessionInfo(
            id=session.id,
            device=str(sessions.device_of(session.user_agent)),
            user_agent=session.user_agent,
            ip_address=session.ip_address,
            method=session.method,
            signed_in_at=session.signed_in_at,
            last_seen_at=session.last_seen_at,
            current=session.session_key == current,
        )
        for session in sessions.active(user)
    ]


@transaction.atomic
def end_session(request: HttpRequest, user: User, session_id: int) -> None:
    """Sign one of the user's sessions out (this one too, if it is this one)."""
    session = UserSession.objects.filter(user=user, id=session_id).first()
    if session is None:
        raise NotFound("No such session.")
    sessions.end([session], request)
    _audit(
        user,
        "session.end",
        actor=Actor(user=user, ip_address=client_ip(request)),
        before={
            "device": str(sessions.device_of(session.user_agent)),
            "ip_address": session.ip_address,
            "signed_in_at": session.signed_in_at.isoformat(),
        },
    )


@transaction.atomic
def end_other_sessions(request: HttpRequest, user: User) -> int:
    """Sign out every session of the user but this one: how many."""
    ended = _end_sessions(user, keep=request.session.session_key)
    if ended:
        _audit(
            user,
            "session.end_all",
            actor=Actor(user=user, ip_address=client_ip(request)),
            after={"sessions_ended": ended, "reason": "signed out of the other sessions"},
        )
    return ended


def end_all_sessions(user: User, *, actor: Actor, reason: str) -> int:
    """Sign the user out everywhere (say, removed from an organization): how many sessions."""
    ended = _end_sessions(user, keep=None)
    if ended:
        _audit(user, "session.end_all", actor=actor, after={"sessions_ended": ended, "reason": reason})
    return ended


def _end_sessions(user: User, *, keep: str | None, request: HttpRequest | None = None) -> int:
    others = UserSession.objects.filter(user=user)
    if keep:
        others = others.exclude(session_key=keep)
    return sessions.end(list(others), request)


# --- passwords -------------------------------------------------------------------------------


def request_password_reset(email: str, *, ip_address: str | None) -> None:
    """Email a single-use reset link if an account has this address. Whether one has is never
    told: the caller answers the same either way."""
    user = User.objects.filter(email__iexact=email.strip(), is_active=True).first()
    if user is None:
        logger.info("Password reset asked for unknown %s from %s", email, ip_address)
        return
    _audit(user, "user.password_reset_request", actor=Actor(user=None, ip_address=ip_address))
    _enqueue(tasks.send_password_reset_email, user.id)


def user_of_reset_link(uid: str, token: str) -> User:
    """The user a reset link is for, while it works (unused, unexpired); 400 otherwise."""
    user = links.user_of_reset_token(uid, token)
    if user is None:
        raise InvalidInput.field("token", RESET_LINK_INVALID)
    return user


@transaction.atomic
def reset_password(request: HttpRequest, *, uid: str, token: str, password: str) -> int:
    """Set a new password through a reset link: every session of the user ends (this browser's
    too, if signed in as them), and failed sign-ins no longer lock the account. The number of
    sessions ended."""
    ip_address = client_ip(request)
    found = user_of_reset_link(uid, token)
    user = User.objects.select_for_update().get(pk=found.pk)
    if user.password != found.password:  # the same link, used at the same moment
        raise InvalidInput.field("token", RESET_LINK_INVALID)
    _validate_new_password(password, user, "password")
    user.set_password(password)
    user.save(update_fields=["password"])
    ended = _end_sessions(user, keep=None, request=request)
    lockout.unlock_account(user.email)
    # The link came to this address: it is the user's.
    _mark_verified(user, user.email)
    _audit(
        user,
        "user.password_reset",
        actor=Actor(user=user, ip_address=ip_address),
        after={"sessions_ended": ended},
    )
    return ended


@transaction.atomic
def change_password(request: HttpRequest, user: User, *, current_password: str, new_password: str) -> int:
    """Change the password, the current one given: this session goes on, every other ends.
    The number of sessions ended."""
    if not user.check_password(current_password):
        raise InvalidInput.field("current_password", WRONG_PASSWORD)
    _validate_new_password(new_password, user, "new_password")
    user.set_password(new_password)
    user.save(update_fields=["password"])
    old_key = request.session.session_key
    # Django ties sessions to the password hash: this keeps the current one (under a new key).
    update_session_auth_hash(request, user)
    sessions.rekey(old_key, request.session.session_key)
    ended = _end_sessions(user, keep=request.session.session_key)
    _audit(
        user,
        "user.password_change",
        actor=Actor(user=user, ip_address=client_ip(request)),
        after={"sessions_ended": ended},
    )
    return ended


# --- email addresses -------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    email: str
    name: str
    email_verified: bool
    pending_email: str


def account_of(user: User) -> Account:
    record = EmailVerification.objects.filter(user=user).first()
    return Account(
        email=user.email,
        name=user.name,
        email_verified=record is not None and record.verified_email.lower() == user.email.lower(),
        pending_email=record.pending_email if record else "",
    )


def _mark_verified(user: User, address: str) -> bool:
    """Record `address` as proven the user's: whether it was not yet."""
    record, _ = EmailVerification.objects.select_for_update().get_or_create(user=user)
    newly = record.verified_email.lower() != address.lower()
    if newly:
        record.verified_email = address.lower()
        record.verified_at = clock.now()
    if record.pending_email.lower() == address.lower():
        record.pending_email = ""
    record.save()
    return newly


@transaction.atomic
def mark_email_verified(user: User, *, how: str, ip_address: str | None) -> None:
    """The user's address is proven theirs another way (`how`: an accepted invitation sent to it)."""
    if _mark_verified(user, user.email):
        _audit(
            user,
            "user.email_verify",
            actor=Actor(user=user, ip_address=ip_address),
            after={"email": user.email, "by": how},
        )


def send_email_verification(user: User) -> None:
    """Email the link that verifies the account's address (at sign-up, and when asked again)."""
    if account_of(user).email_verified:
        raise InvalidInput.field("email", f"{user.email} is already verified.")
    _enqueue(tasks.send_verification_email, user.id, user.email)


@transaction.atomic
def request_email_change(user: User, *, password: str, email: str, ip_address: str | None) -> str:
    """Ask to change the account's address, the password given: a link goes to the new address,
    and the address changes when it is followed. The new address."""
    if not user.check_password(password):
        raise InvalidInput.field("password", WRONG_PASSWORD)
    address = email.strip().lower()
    if address == user.email.lower():
        raise InvalidInput.field("email", "This is already your address.")
    if User.objects.filter(email__iexact=address).exists():
        raise InvalidInput.field("email", "An account with this email already exists.")
    record, _ = EmailVerification.objects.select_for_update().get_or_create(user=user)
    record.pending_email = address
    record.save(update_fields=["pending_email"])
    _audit(
        user,
        "user.email_change_request",
        actor=Actor(user=user, ip_address=ip_address),
        after={"email": address},
    )
    _enqueue(tasks.send_verification_email, user.id, address)
    return address


def _link_refused(message: str) -> InvalidInput:
    return InvalidInput.field("token", message)


@transaction.atomic
def verify_email(token: str, *, ip_address: str | None) -> User:
    """Follow an emailed verification link: the address is verified, and becomes the account's
    when the link was for a change. Works signed in or not: the link is the proof."""
    try:
        link = links.read_email_token(token)
    except links.LinkExpired as exc:
        raise _link_refused("This link has expired: ask for a new one from the console.") from exc
    except links.LinkInvalid as exc:
        raise _link_refused("This link is not valid.") from exc
    user = User.objects.select_for_update().filter(pk=link.user_id, is_active=True).first()
    if user is None:
        raise _link_refused("This link is not valid.")
    actor = Actor(user=user, ip_address=ip_address)
    if user.email.lower() == link.address:
        if _mark_verified(user, link.address):
            _audit(user, "user.email_verify", actor=actor, after={"email": link.address, "by": "link"})
        return user
    if user.email.lower() != link.sent_to_account:
        raise _link_refused("This link no longer applies: the account's address changed since it was sent.")
    if User.objects.filter(email__iexact=link.address).exists():
        raise _link_refused(f"An account with {link.address} exists now: the address cannot change to it.")
    before = user.email
    user.email = link.address
    try:
        with transaction.atomic():
            user.save(update_fields=["email"])
    except IntegrityError as exc:  # taken at the same moment
        raise _link_refused(
            f"An account with {link.address} exists now: the address cannot change to it."
        ) from exc
    _mark_verified(user, link.address)
    _audit(user, "user.email_change", actor=actor, before={"email": before}, after={"email": link.address})
    _enqueue(tasks.send_email_changed_notice, before, link.address)
    return user
