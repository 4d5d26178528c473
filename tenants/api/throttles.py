"""Brute-force protection for the endpoints that take a password."""

import hashlib

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView


class AuthAttemptThrottle(SimpleRateThrottle):
    """Password attempts per client address."""

    scope = "auth"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AuthAccountThrottle(SimpleRateThrottle):
    """Password attempts per account, whatever the address: slows distributed guessing."""

    scope = "auth"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        email = request.data.get("email") if isinstance(request.data, dict) else None
        if not isinstance(email, str) or not email:
            return None
        ident = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        return self.cache_format % {"scope": "auth-account", "ident": ident}


class SignupThrottle(SimpleRateThrottle):
    scope = "signup"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
