"""How a request reaches an organization's portal, and who is signed in there.

- The organization comes from the path (/portal/<slug>/) or from a custom host name the team
  configured (PortalHostMiddleware rewrites the path); the portal must be enabled, else 404.
- A developer's session is a cookie scoped to the portal's path, named apart from the console's:
  the console never reads it, and a console session means nothing here.
- Forms carry a CSRF token of the portal's own: the session's, or before sign-in a random value
  also set in a cookie (double submit); a cross-site Origin is refused as well."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any
from urllib.parse import urlparse

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt

from core.api.client import client_ip
from tenants.models import Organization
from tenants.schemas import activate_organization_schema, activate_public_schema
from tenants.services import organization_by_slug, organization_of_host

from .. import developers
from ..developers import SignedIn
from ..models import PortalSettings
from ..products import portal_settings

SESSION_COOKIE = "portal_session"
CSRF_COOKIE = "portal_csrf"
HOST_CACHE_SECONDS = 30


@dataclass
class PortalRequest:
    organization: Organization
    settings: PortalSettings
    base: str  # the portal's root path: /portal/<slug>/, or / on its own host
    signed_in: SignedIn | None
    csrf: str
    new_csrf_cookie: bool
    ip_address: str | None

    @property
    def author(self) -> Any:
        assert self.signed_in is not None
        return developers.developer_author(self.organization, self.signed_in.developer, self.ip_address)


def _organization(request: HttpRequest, slug: str) -> tuple[Organization, str]:
    host_slug = getattr(request, "portal_host_slug", None)
    if host_slug is not None:
        if host_slug != slug:
            raise Http404
        organization = organization_by_slug(slug)
        base = "/"
    else:
        organization = organization_by_slug(slug)
        base = f"/portal/{slug}/"
    if organization is None:
        raise Http404
    return organization, base


def portal_page(
    *, signed_in: bool = False
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A portal view: (request, portal, **kwargs). `signed_in`: send others to the sign-in page."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt  # the portal checks its own token (check_csrf), not the console's
        @wraps(view)
        def wrapper(request: HttpRequest, org_slug: str, **kwargs: Any) -> HttpResponse:
            organization, base = _organization(request, org_slug)
            activate_organization_schema(organization)
            try:
                settings_ = portal_settings()
                if not settings_.enabled:
                    raise Http404
                session = developers.session_of(request.COOKIES.get(SESSION_COOKIE))
                cookie_csrf = request.COOKIES.get(CSRF_COOKIE, "")
                csrf = session.session.csrf_token if session else cookie_csrf or secrets.token_urlsafe(24)
                portal = PortalRequest(
                    organization,
                    settings_,
                    base,
                    session,
                    csrf,
                    not session and not cookie_csrf,
                    client_ip(request),
                )
                if request.method == "POST" and not _csrf_ok(request, portal):
                    return HttpResponseForbidden(
                        "This form has expired: go back, reload the page and try again."
                    )
                if signed_in and session is None:
                    return redirect_to(portal, f"signin?next={request.path}")
                response = view(request, portal, **kwargs)
                if portal.new_csrf_cookie:
                    response.set_cookie(
                        CSRF_COOKIE,
                        csrf,
                        path=base,
                        httponly=True,
                        samesite="Lax",
                        secure=request.is_secure(),
                    )
                return response
            finally:
                activate_public_schema()

        return wrapper

    return decorate


def _csrf_ok(request: HttpRequest, portal: PortalRequest) -> bool:
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlparse(origin).netloc != request.get_host():
        return False
    given = request.POST.get("csrf", "")
    return bool(given) and not portal.new_csrf_cookie and secrets.compare_digest(given, portal.csrf)


def redirect_to(portal: PortalRequest, relative: str) -> HttpResponse:
    response = HttpResponse(status=303)
    response["Location"] = f"{portal.base}{relative}"
    return response


def set_session_cookie(
    response: HttpResponse, portal: PortalRequest, secret: str, request: HttpRequest
) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=developers.SESSION_DAYS * 86400,
        path=portal.base,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )


def clear_session_cookie(response: HttpResponse, portal: PortalRequest) -> None:
    response.delete_cookie(SESSION_COOKIE, path=portal.base)


class PortalHostMiddleware:
    """Requests to a portal's custom host name are served as /portal/<slug>/...; the host names
    are read from the database at most every HOST_CACHE_SECONDS each."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)
        self._public_host = (urlparse(settings.PUBLIC_URL).hostname or "").lower()
        self._hosts: dict[str, tuple[float, str | None]] = {}

    def _known(self, host: str) -> tuple[bool, str | None]:
        cached = self._hosts.get(host)
        if cached and cached[0] > time.monotonic():
            return True, cached[1]
        return False, None

    def _remember(self, host: str, slug: str | None) -> str | None:
        if len(self._hosts) > 10_000:
            self._hosts.clear()
        self._hosts[host] = (time.monotonic() + HOST_CACHE_SECONDS, slug)
        return slug

    def _lookup(self, host: str) -> str | None:
        organization = organization_of_host(host)
        return self._remember(host, organization.slug if organization else None)

    def _host(self, request: HttpRequest) -> str | None:
        # The raw header: Django checks it against ALLOWED_HOSTS later, when a view asks for it.
        host = str(request.META.get("HTTP_HOST", "")).rsplit(":", 1)[0].lower()
        if not host or host == self._public_host or host in ("localhost", "testserver") or host[0].isdigit():
            return None
        return host

    def _rewrite(self, request: HttpRequest, slug: str | None) -> None:
        if slug is not None:
            request.portal_host_slug = slug  # type: ignore[attr-defined]
            request.path_info = f"/portal/{slug}{request.path_info}"

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self._acall(request)
        host = self._host(request)
        if host is not None:
            known, slug = self._known(host)
            self._rewrite(request, slug if known else self._lookup(host))
        return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> Any:
        host = self._host(request)
        if host is not None:
            known, slug = self._known(host)
            self._rewrite(request, slug if known else await sync_to_async(self._lookup)(host))
        return await self.get_response(request)
