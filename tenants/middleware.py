"""Every request starts in the public schema; the organization scoping base (tenants.api.scoping)
switches to an organization's schema only after checking membership."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .schemas import activate_public_schema


class PublicSchemaMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Connections are reused across requests: never inherit the previous request's schema.
        activate_public_schema()
        try:
            return self.get_response(request)
        finally:
            activate_public_schema()
