"""The links emailed to people: Django's own signed tokens, no secret of ours stored.

- Password reset: django.contrib.auth's PasswordResetTokenGenerator. The token hashes the
  password and last sign-in, so it works once; it expires after PASSWORD_RESET_TIMEOUT.
- Email verification (at sign-up, and for a change of address): django.core.signing, holding
  the user, the address the account had when it was sent and the address to verify; it expires
  after EMAIL_VERIFICATION_TTL_HOURS and stops working once the account's address changes."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from tenants.models import User

_EMAIL_SALT = "identity.email-verification"


def password_reset_link(user: User) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return f"{settings.PUBLIC_URL}/console/reset/{uid}/{default_token_generator.make_token(user)}"


def user_of_reset_token(uid: str, token: str) -> User | None:
    """The user whose reset link this is, while it is valid (unused and unexpired)."""
    try:
        pk = int(force_str(urlsafe_base64_decode(uid)))
    except (TypeError, ValueError, OverflowError, UnicodeDecodeError):
        return None
    if not 0 < pk < 2**63:
        return None
    user = User.objects.filter(pk=pk, is_active=True).first()
    if user is None or not default_token_generator.check_token(user, token):
        return None
    return user


def email_link(user: User, address: str) -> str:
    token = signing.dumps({"u": user.pk, "from": user.email.lower(), "to": address.lower()}, salt=_EMAIL_SALT)
    return f"{settings.PUBLIC_URL}/console/verify-email/{token}"


@dataclass(frozen=True)
class EmailToken:
    user_id: int
    sent_to_account: str  # the account's address when the link was sent
    address: str  # the address the link verifies


class LinkExpired(Exception):
    pass


class LinkInvalid(Exception):
    pass


def read_email_token(token: str) -> EmailToken:
    try:
        data = signing.loads(token, salt=_EMAIL_SALT, max_age=settings.EMAIL_VERIFICATION_TTL_HOURS * 3600)
    except signing.SignatureExpired as exc:
        raise LinkExpired from exc
    except signing.BadSignature as exc:
        raise LinkInvalid from exc
    if not (
        isinstance(data, dict)
        and isinstance(data.get("u"), int)
        and isinstance(data.get("from"), str)
        and isinstance(data.get("to"), str)
    ):
        raise LinkInvalid
    return EmailToken(user_id=data["u"], sent_to_account=data["from"], address=data["to"])
