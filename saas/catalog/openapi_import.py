"""Import an OpenAPI 3 document as a service with one route per path and method.

Routes match the path as clients call it: the first server URL's path, then the OpenAPI path.
A templated path (`/pet/{petId}`) becomes an anchored regex (`^/api/v3/pet/[^/]+$`) at priority
0; a literal path becomes an exact match at priority 1, so `/pet/findByStatus` wins over
`/pet/{petId}`. Each route is named after its operationId (or method and path). Without an
existing upstream, one is created from the first server URL."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from django.db import transaction
from django.utils.text import slugify

from core.errors import InvalidInput
from saas.gateways.publishing import publish
from saas.gateways.services import Author, GatewayCluster

from . import services
from .declarative import load_mapping
from .models import Upstream

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _load(text: Any) -> dict[str, Any]:
    document = load_mapping(text)
    if document is None or not str(document.get("openapi", "")).startswith("3."):
        raise InvalidInput.field("document", "Expected an OpenAPI 3 document (an `openapi: 3.x` field).")
    if not isinstance(document.get("paths"), dict) or not document["paths"]:
        raise InvalidInput.field("document", "The document has no paths.")
    return document


def _route_path(base: str, path: str) -> tuple[dict[str, str], int]:
    full = (base.rstrip("/") + "/" + path.lstrip("/")) if base else path
    if "{" not in full:
        return {"type": "exact", "value": full}, 1
    parts = re.split(r"(\{[^}/]+\})", full)
    pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    return {"type": "regex", "value": f"^{pattern}$"}, 0


def _route_name(method: str, path: str, operation: dict[str, Any]) -> str:
    operation_id = operation.get("operationId")
    if isinstance(operation_id, str) and operation_id.strip():
        return operation_id.strip()[:100]
    return f"{method}-{slugify(path.replace('{', '').replace('}', '')) or 'root'}"[:100]


def import_openapi(
    author: Author,
    cluster: GatewayCluster,
    text: Any,
    *,
    service_name: str | None,
    upstream_name: str | None,
) -> dict[str, Any]:
    document = _load(text)
    info: dict[str, Any] = document["info"] if isinstance(document.get("info"), dict) else {}
    name = service_name or slugify(str(info.get("title", ""))) or "imported-api"
    servers = document.get("servers") or [{"url": "/"}]
    server_url = str(servers[0].get("url", "/")) if isinstance(servers[0], dict) else "/"
    parsed = urlparse(server_url)
    with transaction.atomic():  # every write without its own publish; one publish at the end
        if upstream_name:
            if not Upstream.objects.filter(cluster=cluster, name=upstream_name).exists():
                raise InvalidInput.field("upstream", f"No upstream named {upstream_name!r} in this cluster.")
        else:
            if not parsed.hostname:
                raise InvalidInput.field(
                    "upstream", "The document's first server has no host: name an existing upstream."
                )
            upstream_name = f"{name}-upstream"[:100]
            https = parsed.scheme == "https"
            services.save_upstream(
                author,
                cluster,
                {
                    "name": upstream_name,
                    "targets": [{"host": parsed.hostname, "port": parsed.port or (443 if https else 80)}],
                    "scheme": "https" if https else "http",
                    **({"tls_sni": parsed.hostname} if https else {}),
                },
                publish=False,
            )
        service = services.save_service(
            author,
            cluster,
            {"name": name, "upstream": upstream_name, "description": str(info.get("title", ""))[:500]},
            publish=False,
        )
        service.openapi_document = document
        service.save(update_fields=["openapi_document"])
        routes = []
        for path, item in document["paths"].items():
            if not isinstance(item, dict):
                continue
            for method in METHODS:
                operation = item.get(method)
                if not isinstance(operation, dict):
                    continue
                route_path, priority = _route_path(
                    parsed.path if parsed.hostname or server_url.startswith("/") else "", path
                )
                route = {
                    "name": _route_name(method, path, operation),
                    "service": name,
                    "paths": [route_path],
                    "methods": [method.upper()],
                    "priority": priority,
                }
                try:
                    route["id"] = services.save_route(author, cluster, route, publish=False).id
                except InvalidInput as exc:
                    raise InvalidInput(
                        {f"paths.{path}.{method}.{k}": v for k, v in exc.errors.items()},
                        detail=f"{method.upper()} {path}: {exc.detail}",
                    ) from exc
                routes.append(route)
        published = publish(cluster, author=author.label, reason=f"openapi import {name}")
    return {"service": name, "upstream": upstream_name, "routes": routes, "version": published.version}
