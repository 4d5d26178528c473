"""Keeps each signed-in session's last-seen time and address (identity.sessions), at most once a
minute. After AuthenticationMiddleware: it needs request.user."""

from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

from tenants.models import User

from . import sessions


class SessionActivityMiddleware(MiddlewareMixin):
    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        user = getattr(request, "user", None)
        # API tokens authenticate later, in the views: a request here is signed in by its cookie.
        if isinstance(user, User) and user.is_authenticated:
            sessions.touch(request, user)
        return None
