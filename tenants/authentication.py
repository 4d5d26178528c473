"""How API callers prove who they are: a session cookie (browsers, with CSRF) or an API token."""

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .models import ApiToken, Membership, User
from .services import authenticate_api_token


class CsrfSessionAuthentication(authentication.SessionAuthentication):
    """Session auth that always enforces CSRF (DRF's does too; named for clarity)."""


class TokenAuth:
    """What `request.auth` holds for a token-authenticated request."""

    def __init__(self, token: ApiToken, membership: Membership) -> None:
        self.token = token
        self.membership = membership


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, TokenAuth] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Bearer <token>'.")
        try:
            secret = header[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("Malformed token.") from exc
        found = authenticate_api_token(secret)
        if found is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked API token.")
        token, membership = found
        return token.user, TokenAuth(token, membership)

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def token_auth_of(request: Any) -> TokenAuth | None:
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, TokenAuth) else None
