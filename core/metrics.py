"""Metrics for Prometheus: a registry of gauges, each read when scraped, and `GET /metrics`
rendering them in the text exposition format (version 0.0.4).

An app registers its gauges once, in its `AppConfig.ready`:

    register_gauge("saas_usage_queue_depth", "Usage batches waiting for a consumer.", queue_depth)

`/metrics` answers only with the bearer token of the setting `SAAS_METRICS_TOKEN`: 404 while it
is unset (no metrics endpoint), 401 for a missing or wrong token. A gauge whose reading fails is
left out of that scrape and logged; the others are still served."""

from __future__ import annotations

import hmac
import logging
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from core.api.raw_asgi import bearer_secret

logger = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


@dataclass(frozen=True)
class _Gauge:
    help: str
    collect: Callable[[], float]


_gauges: dict[str, _Gauge] = {}
_lock = threading.Lock()


def register_gauge(name: str, help: str, collect: Callable[[], float]) -> None:
    """A gauge `name` whose value is `collect()` at each scrape. Registering a name again
    replaces it."""
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a Prometheus metric name.")
    with _lock:
        _gauges[name] = _Gauge(help, collect)


def _value(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return repr(float(number)) if not float(number).is_integer() else str(int(number))


def render() -> str:
    """Every registered gauge, read now, in the text exposition format."""
    with _lock:
        gauges = sorted(_gauges.items())
    lines: list[str] = []
    for name, gauge in gauges:
        try:
            value = _value(float(gauge.collect()))
        except Exception:
            logger.exception("metric %s could not be read; left out of this scrape", name)
            continue
        lines += [
            f"# HELP {name} {gauge.help.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n')}",
            f"# TYPE {name} gauge",
            f"{name} {value}",
        ]
    return "".join(line + "\n" for line in lines)


@csrf_exempt  # no cookie session: a bearer token, and only GET does anything
def metrics_view(request: HttpRequest) -> HttpResponse:
    token: str = getattr(settings, "SAAS_METRICS_TOKEN", "") or ""
    if not token:
        raise Http404
    if request.method not in ("GET", "HEAD"):
        return JsonResponse(
            {"detail": f'Method "{request.method}" not allowed.'}, status=405, headers={"Allow": "GET, HEAD"}
        )
    presented = bearer_secret(request.headers.get("Authorization", ""))
    if not hmac.compare_digest(presented.encode(), token.encode()):
        return JsonResponse(
            {"detail": "A valid metrics token is required (Authorization: Bearer <token>)."},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return HttpResponse(render(), content_type=CONTENT_TYPE)
