"""Per-request identity work on signed-in sessions. After AuthenticationMiddleware: both need
request.user.

- SessionActivityMiddleware keeps each session's last-seen time and address (identity.sessions),
  at most once a minute.
- MfaSetupRequiredMiddleware holds a member of an organization that requires two-factor sign-in,
  who has not set it up, to setting it up: every other API endpoint answers 403 with the code
  `mfa_setup_required`, but for signing out and `auth/me`. Flagged at sign-in (identity.mfa);
  API tokens are not concerned (MFA is for interactive sign-in)."""

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin

from tenants.models import User

from . import mfa, sessions

# What a member held to the setup may still reach: who they are, signing out (or in again), the
# CSRF cookie the console's writes need, and the two-factor endpoints themselves (named mfa-*).
SETUP_ALLOWED = frozenset({"me", "logout", "login", "csrf"})


class SessionActivityMiddleware(MiddlewareMixin):
    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        user = getattr(request, "user", None)
        # API tokens authenticate later, in the views: a request here is signed in by its cookie.
        if isinstance(user, User) and user.is_authenticated:
            sessions.touch(request, user)
        return None


class MfaSetupRequiredMiddleware(MiddlewareMixin):
    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        if not request.session.get(mfa.SETUP_REQUIRED_KEY):
            return None
        if not request.path.startswith("/api/"):
            return None  # the console's pages, static files: the API is what is held
        name = request.resolver_match.url_name if request.resolver_match else ""
        name = name or ""
        if name in SETUP_ALLOWED or name.startswith("mfa-"):
            return None
        # A bearer token authenticates the request instead of the cookie (or fails it): not held.
        if request.headers.get("Authorization", "").lower().startswith("bearer "):
            return None
        user = getattr(request, "user", None)
        if not isinstance(user, User) or not user.is_authenticated:
            return None
        if not mfa.setup_required(user):  # set up in another session, or no longer required
            request.session.pop(mfa.SETUP_REQUIRED_KEY, None)
            return None
        return JsonResponse(
            {"detail": mfa.setup_required_message(user), "code": "mfa_setup_required"}, status=403
        )
