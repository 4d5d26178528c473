"""Every request starts in the public schema; the organization scoping base (tenants.api.scoping)
switches to an organization's schema only after checking membership."""

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest

from .schemas import activate_public_schema


class PublicSchemaMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            # Async views reach the database only through sync_to_async helpers that choose
            # their schema explicitly (schema_context), so nothing to reset on the loop.
            return self.get_response(request)
        # Connections are reused across requests: never inherit the previous request's schema.
        activate_public_schema()
        try:
            return self.get_response(request)
        finally:
            activate_public_schema()
