"""Limits on the endpoints that send emails or check a password or a link. Their rates are fixed
here: high enough for a person, low enough that no one floods an inbox or guesses."""

import hashlib

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView


class _PerAddress(SimpleRateThrottle):
    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ResetRequestAddressThrottle(_PerAddress):
    """Reset emails asked from one client address."""

    scope = "identity-reset-address"
    rate = "20/hour"


class ResetRequestEmailThrottle(SimpleRateThrottle):
    """Reset emails to one mailbox, whoever asks."""

    scope = "identity-reset-email"
    rate = "5/hour"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        email = request.data.get("email") if isinstance(request.data, dict) else None
        if not isinstance(email, str) or not email:
            return None
        ident = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


class LinkThrottle(_PerAddress):
    """Emailed links checked and followed from one client address."""

    scope = "identity-link"
    rate = "30/min"


class AccountThrottle(SimpleRateThrottle):
    """A signed-in user's password checks and emails sent (change of password or email, a new
    verification link)."""

    scope = "identity-account"
    rate = "10/min"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class SecondStepThrottle(_PerAddress):
    """Second-factor codes tried from one client address (lockout counts them too)."""

    scope = "identity-mfa"
    rate = "10/min"
