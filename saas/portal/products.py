"""The team's side of the portal: its settings, and the API products it publishes, with their
versions (the routes of a cluster and an OpenAPI document) and plans (a call limit each)."""

from __future__ import annotations

import json
from typing import Any

import yaml
from django.db import transaction

from core.errors import InvalidInput
from saas.catalog import services as catalog
from saas.gateways.services import Author, GatewayCluster
from tenants.audit import record_audit
from tenants.services import claim_portal_host

from . import enforcement
from .models import (
    ApiProduct,
    Application,
    PortalSettings,
    ProductPlan,
    ProductVersion,
    Subscription,
    save_unique,
)

TIME_WINDOWS = (1, 60, 3600, 86400)
MAX_DOCUMENT_CHARS = 2_000_000


def portal_settings() -> PortalSettings:
    settings, _ = PortalSettings.objects.get_or_create(pk=1)
    return settings


def settings_view(settings: PortalSettings) -> dict[str, Any]:
    return {
        "enabled": settings.enabled,
        "title": settings.title,
        "logo_url": settings.logo_url,
        "primary_color": settings.primary_color,
        "signup_mode": settings.signup_mode,
        "custom_host": settings.custom_host,
    }


@transaction.atomic
def save_portal_settings(author: Author, changes: dict[str, Any]) -> PortalSettings:
    """`changes`: validated fields of settings_view; those absent stay as they are."""
    settings = PortalSettings.objects.select_for_update().get(pk=portal_settings().pk)
    before = settings_view(settings)
    if "custom_host" in changes and changes["custom_host"] != settings.custom_host:
        claim_portal_host(author.organization, changes["custom_host"] or None, settings.custom_host or None)
    for field, value in changes.items():
        setattr(settings, field, value)
    settings.save()
    # The try-it panel's calls come from the portal's origins: its custom host name among them.
    changed = enforcement.sync_portal_cors(author)
    enforcement.publish_clusters(author, changed, "portal settings", ["routes"])
    record_audit(
        author.actor,
        author.organization,
        "portal.settings",
        settings,
        before=before,
        after=settings_view(settings),
    )
    return settings


# --- products ----------------------------------------------------------------------------------


def product_view(product: ApiProduct) -> dict[str, Any]:
    return {
        "id": product.id,
        "name": product.name,
        "slug": product.slug,
        "description": product.description,
        "auth_type": product.auth_type,
        "published": product.published,
        "versions": [version_view(v) for v in product.versions.all()],
        "plans": [plan_view(p) for p in product.plans.all()],
        "created_at": product.created_at,
        "updated_at": product.updated_at,
    }


def version_view(version: ProductVersion) -> dict[str, Any]:
    return {
        "id": version.id,
        "name": version.name,
        "status": version.status,
        "cluster_id": version.cluster_id,
        "route_ids": version.route_ids,
        "has_openapi": version.openapi is not None,
        "gateway_url": version.gateway_url,
        "subscriptions": Subscription.objects.filter(version=version).count(),
    }


def plan_view(plan: ProductPlan) -> dict[str, Any]:
    return {
        "id": plan.id,
        "name": plan.name,
        "description": plan.description,
        "limit_count": plan.limit_count,
        "time_window": plan.time_window,
    }


def products() -> list[ApiProduct]:
    return list(ApiProduct.objects.prefetch_related("versions", "plans").order_by("name"))


@transaction.atomic
def save_product(author: Author, data: dict[str, Any], instance: ApiProduct | None = None) -> ApiProduct:
    """`data`: name, slug, description, auth_type, published (validated). The authentication is
    chosen before the first version."""
    product = instance or ApiProduct()
    before = product_view(instance) if instance else None
    if (
        instance
        and data.get("auth_type", instance.auth_type) != instance.auth_type
        and instance.versions.exists()
    ):
        # Its routes took the first authentication; two on one route would ask for both.
        raise InvalidInput.field(
            "auth_type", "This product has versions: its authentication cannot change. Make a new product."
        )
    for field, value in data.items():
        setattr(product, field, value)
    save_unique(product, "slug", "Another product has this name or address.")
    record_audit(
        author.actor,
        author.organization,
        "portal.product.update" if instance else "portal.product.create",
        product,
        before=_summary(before),
        after=_summary(product_view(product)),
    )
    return product


def _summary(view: dict[str, Any] | None) -> dict[str, Any] | None:
    if view is None:
        return None
    return {k: v for k, v in view.items() if k not in ("description", "created_at", "updated_at")}


def _guard(author: Author, version: ProductVersion, previous_route_ids: list[int]) -> None:
    if enforcement.guard_routes(
        author, version, previous_route_ids=previous_route_ids, auth_type=version.product.auth_type
    ):
        catalog.publish_changes(author, version.cluster, f"portal version {version}", ["routes"])


@transaction.atomic
def delete_product(author: Author, product: ApiProduct) -> None:
    for version in list(product.versions.all()):
        delete_version(author, version)
    record_audit(
        author.actor,
        author.organization,
        "portal.product.delete",
        product,
        before=_summary(product_view(product)),
    )
    product.delete()


# --- versions ----------------------------------------------------------------------------------


def _openapi_document(text: Any) -> dict[str, Any]:
    """An uploaded OpenAPI 3 document: a JSON object, or its text in JSON or YAML."""
    document = text
    if isinstance(text, str):
        if len(text) > MAX_DOCUMENT_CHARS:
            raise InvalidInput.field("openapi", "The document is over 2 MB.")
        try:
            # Aliases refused: a few lines of them expand to gigabytes once stored as JSON.
            if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader)):
                raise InvalidInput.field(
                    "openapi", "YAML aliases (*name) are not taken: write the document out."
                )
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInput.field("openapi", f"Neither JSON nor YAML: {exc}".splitlines()[0]) from None
    if not isinstance(document, dict):
        raise InvalidInput.field("openapi", "An OpenAPI document is an object.")
    if not isinstance(document.get("openapi"), str) or not isinstance(document.get("paths"), dict):
        raise InvalidInput.field("openapi", "Not an OpenAPI 3 document: it needs `openapi` and `paths`.")
    servers = document.get("servers", [])
    if not isinstance(servers, list) or not all(
        isinstance(server, dict) and isinstance(server.get("url", ""), str) for server in servers
    ):
        raise InvalidInput.field("openapi", "`servers` is a list of objects with a `url` text.")
    if not isinstance(document.get("components", {}), dict):
        raise InvalidInput.field("openapi", "`components` is an object.")
    # YAML's dates and the like, as text: what is stored and served is JSON.
    document = json.loads(json.dumps(document, default=str))
    if len(json.dumps(document)) > MAX_DOCUMENT_CHARS:
        raise InvalidInput.field("openapi", "The document is over 2 MB.")
    return document


@transaction.atomic
def save_version(
    author: Author,
    product: ApiProduct,
    *,
    name: str,
    status: str,
    cluster: GatewayCluster,
    route_ids: list[int] | None,
    openapi: Any = None,
    service: str | None = None,
    gateway_url: str = "",
    instance: ProductVersion | None = None,
) -> ProductVersion:
    """A version covers `route_ids` of `cluster`, or every route of `service` (an earlier OpenAPI
    import, whose document it takes unless `openapi` is given). Its routes then require the
    product's authentication and admit only its subscribers."""
    document = _openapi_document(openapi) if openapi not in (None, "") else None
    if service:
        service_routes, imported = catalog.imported_service(cluster, service)
        route_ids = sorted(set(route_ids or []) | set(service_routes))
        document = document or imported
    route_ids = sorted(set(route_ids or []))
    found = {route.id for route in catalog.routes_by_ids(cluster, route_ids)}
    missing = [i for i in route_ids if i not in found]
    if missing:
        raise InvalidInput.field("route_ids", f"No routes with ids {missing} in cluster {cluster.name}.")
    if not route_ids:
        raise InvalidInput.field("route_ids", "A version covers at least one route.")
    if instance and instance.cluster_id != cluster.id and instance.subscriptions.exists():
        raise InvalidInput.field(
            "cluster_id", "Applications are subscribed to this version: its cluster cannot change."
        )
    version = instance or ProductVersion(product=product)
    previous = list(instance.route_ids) if instance and instance.cluster_id == cluster.id else []
    if instance and instance.cluster_id != cluster.id:
        old = ProductVersion(pk=instance.pk, product=product, cluster=instance.cluster, route_ids=[])
        _guard(author, old, list(instance.route_ids))
    before = version_view(instance) if instance else None
    version.name, version.status, version.cluster, version.route_ids = name, status, cluster, route_ids
    version.gateway_url = gateway_url.rstrip("/")
    if document is not None:
        version.openapi = document
    save_unique(version, "name", f"{product.name} has a version named {name!r} already.")
    _guard(author, version, previous)
    record_audit(
        author.actor,
        author.organization,
        "portal.version.update" if instance else "portal.version.create",
        version,
        before=before,
        after=version_view(version),
    )
    return version


@transaction.atomic
def delete_version(author: Author, version: ProductVersion) -> None:
    """Its subscriptions end: their applications lose access to its routes."""
    applications = list(Application.objects.filter(subscriptions__version=version).distinct())
    Subscription.objects.filter(version=version).delete()
    changed: dict[int, GatewayCluster] = {}
    for application in applications:
        changed.update(enforcement.sync_application(author, application))
    routes = list(version.route_ids)
    version.route_ids = []
    if enforcement.guard_routes(
        author, version, previous_route_ids=routes, auth_type=version.product.auth_type
    ):
        changed[version.cluster_id] = version.cluster
    enforcement.publish_clusters(
        author, changed, f"portal version {version} deleted", ["routes", "consumers"]
    )
    record_audit(
        author.actor, author.organization, "portal.version.delete", version, before=version_view(version)
    )
    version.delete()


# --- plans -------------------------------------------------------------------------------------


@transaction.atomic
def save_plan(
    author: Author, product: ApiProduct, data: dict[str, Any], instance: ProductPlan | None = None
) -> ProductPlan:
    """`data`: name, description, limit_count and time_window (both or neither). A changed limit
    applies to the plan's subscribers at once."""
    if (data.get("limit_count") is None) != (data.get("time_window") is None):
        raise InvalidInput.field("time_window", "Give both a limit and its time window, or neither.")
    if data.get("time_window") is not None and data["time_window"] not in TIME_WINDOWS:
        raise InvalidInput.field("time_window", "One of 1 (a second), 60, 3600 or 86400 (a day).")
    plan = instance or ProductPlan(product=product)
    before = plan_view(instance) if instance else None
    for field, value in data.items():
        setattr(plan, field, value)
    save_unique(plan, "name", f"{product.name} has a plan named {plan.name!r} already.")
    if instance:
        changed: dict[int, GatewayCluster] = {}
        for application in Application.objects.filter(subscriptions__plan=plan).distinct():
            changed.update(enforcement.sync_application(author, application))
        enforcement.publish_clusters(author, changed, f"portal plan {plan}", ["consumers"])
    record_audit(
        author.actor,
        author.organization,
        "portal.plan.update" if instance else "portal.plan.create",
        plan,
        before=before,
        after=plan_view(plan),
    )
    return plan


@transaction.atomic
def delete_plan(author: Author, plan: ProductPlan) -> None:
    if plan.subscriptions.exists():
        raise InvalidInput.field("plan", "Applications hold this plan: move them to another plan first.")
    record_audit(author.actor, author.organization, "portal.plan.delete", plan, before=plan_view(plan))
    plan.delete()
