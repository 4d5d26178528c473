"""Every API error has the same shape: {"detail": "...", "errors": {field: [messages]}} for bad
input, {"detail": "..."} otherwise."""

import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceError, StaleRevision


def _first_message(errors: Any) -> str | None:
    if isinstance(errors, dict):
        for key, value in errors.items():
            message = _first_message(value)
            if message:
                return message if key in ("non_field_errors", "detail") else f"{key}: {message}"
    elif isinstance(errors, list):
        for item in errors:
            message = _first_message(item)
            if message:
                return message
    elif errors:
        return str(errors)
    return None


def _as_field_errors(detail: Any) -> dict[str, Any]:
    if isinstance(detail, dict):
        return detail
    if isinstance(detail, list):
        return {"non_field_errors": detail}
    return {"non_field_errors": [detail]}


def _try_again(wait: float | None) -> str:
    if wait is None:
        return "Too many requests: try again later."
    seconds = max(1, math.ceil(wait))
    return f"Too many requests: try again in {seconds} second{'s' if seconds != 1 else ''}."


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ServiceError):
        if isinstance(exc, InvalidInput):
            return Response({"detail": exc.detail, "errors": exc.errors}, status=status.HTTP_400_BAD_REQUEST)
        if isinstance(exc, StaleRevision):
            return Response({"detail": exc.detail, **exc.current}, status=status.HTTP_412_PRECONDITION_FAILED)
        code = {Forbidden: 403, NotFound: 404, Conflict: 409}.get(type(exc), 400)
        return Response({"detail": exc.detail}, status=code)
    if isinstance(exc, exceptions.ValidationError):
        errors = _as_field_errors(exc.detail)
        return Response(
            {"detail": _first_message(errors) or "Invalid input.", "errors": errors},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is not None and type(exc) is exceptions.Throttled:
        # DRF's "Request was throttled. Expected available in 32 seconds." shown as it is.
        response.data = {"detail": _try_again(getattr(exc, "wait", None))}  # not in the stubs
    if response is not None and isinstance(response.data, dict) and "detail" not in response.data:
        response.data = {"detail": _first_message(response.data) or "Error.", "errors": response.data}
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": "Not found."}, status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"detail": "Internal server error."}, status=500)
