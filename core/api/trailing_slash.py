"""In the API the trailing slash is optional: `POST /api/v1/invitations/accept` is
`POST /api/v1/invitations/accept/`, whatever the method.

Django's answer to a missing slash (APPEND_SLASH) is a redirect, which suits browsers but not API
clients: a 301 or 302 turns POST, PUT, PATCH and DELETE into a GET in most clients (a create
would come back as the list, 200, and nothing created), 307/308 are not followed by curl without
-L nor by httpx, and under DEBUG Django refuses to redirect a POST at all (RuntimeError, a 500).
So the path is routed as it was meant instead: the same view, the same answer, one round trip.
The documented form (the OpenAPI schema, reverse()) keeps its slash."""

from typing import Any

from django.urls import URLResolver
from django.urls.exceptions import Resolver404
from django.urls.resolvers import ResolverMatch


class SlashOptionalResolver(URLResolver):
    """A URLResolver that tries a path matching none of its patterns once more, with the
    trailing slash added or removed. Only then: a path that matches costs nothing extra."""

    def resolve(self, path: Any) -> ResolverMatch:
        try:
            return super().resolve(path)
        except Resolver404 as missing:
            path = str(path)
            if self.pattern.match(path) is None:  # not under this resolver's prefix at all
                raise
            other = path[:-1] if path.endswith("/") else f"{path}/"
            try:
                return super().resolve(other)
            except Resolver404:
                raise missing from None  # what was tried for the path as sent


def slash_optional(resolver: URLResolver) -> SlashOptionalResolver:
    """`path("api/", include(...))`, its trailing slashes made optional."""
    return SlashOptionalResolver(
        resolver.pattern,
        resolver.urlconf_name,
        resolver.default_kwargs,
        resolver.app_name,
        resolver.namespace,
    )
