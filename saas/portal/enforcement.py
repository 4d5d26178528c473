"""What the gateway enforces for the portal, kept in the catalog through its service functions, so
nothing new runs on the data plane:

- a product version's routes require the product's authentication and let through only consumers
  labelled with the version's access label (the `consumer-restriction` plugin), and take
  cross-origin calls from the portal's own pages (the `cors` plugin: the documentation's try-it
  panel calls the gateway from the browser);
- an application is one catalog consumer per cluster it subscribes in (`portal-app-<id>`),
  labelled `managed-by: portal`, with one access label per subscribed version, the application's
  credentials, and its plan's `limit-count`; disabled while the application or its developer is
  suspended, so the gateway answers 401 to its credentials.

Every function here writes without publishing and returns the clusters it changed; the caller
publishes each once (`publish_clusters`), in the same transaction."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from core.encryption import decrypt_secret
from saas.catalog import services as catalog
from saas.gateways.services import Author, GatewayCluster

from .models import (
    Application,
    ApplicationConsumer,
    DeveloperStatus,
    PortalSettings,
    ProductPlan,
    ProductVersion,
    RouteCors,
    Subscription,
)

MANAGED_LABEL = "managed-by"
MANAGED_VALUE = "portal"
RESTRICTION = "consumer-restriction"
SUBSCRIBED = "subscribed"
CLOSED_LABEL = "portal-closed"  # no consumer carries it
AUTH_PLUGINS = frozenset({"key-auth", "jwt-auth", "basic-auth", "hmac-auth"})
CORS = "cors"
CORS_MAX_AGE = 600  # seconds a browser may keep a preflight's answer
# What the try-it panel may read of an answer beside the safelisted headers: the plan's limits.
CORS_EXPOSED = ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"]
# Beside the authentication's header: a request body's type (JSON is not a "simple" request).
CORS_HEADERS = ["Content-Type"]
MAX_CORS_HEADERS = 50
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,256}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def publish_clusters(
    author: Author, clusters: dict[int, GatewayCluster], reason: str, sections: list[str]
) -> None:
    for cluster in clusters.values():
        catalog.publish_changes(author, cluster, reason, sections)


# --- routes ------------------------------------------------------------------------------------


def guard_routes(
    author: Author, version: ProductVersion, *, previous_route_ids: list[int], auth_type: str
) -> list[int]:
    """The version's routes require `auth_type`, admit its subscribers and take calls from the
    portal's pages; routes it no longer covers stop admitting them, and lose the portal's cors
    unless another version covers them. Returns the route ids changed."""
    label = version.access_label
    changed = []
    wanted = set(version.route_ids)
    cors = _CorsSync(version.cluster, exclude=version, extra=version)
    for route in catalog.routes_by_ids(version.cluster, sorted(wanted | set(previous_route_ids))):
        plugins = dict(route.plugins)
        restriction: dict[str, Any] = dict(plugins.get(RESTRICTION) or {})
        labels = dict(restriction.get("labels") or {})
        if route.id in wanted:
            labels[label] = SUBSCRIBED
            labels.pop(CLOSED_LABEL, None)
            if not AUTH_PLUGINS & set(plugins):  # the route's own authentication is kept
                plugins[auth_type] = {}
        elif label in labels:
            labels.pop(label, None)
            if not labels and not restriction.get("consumers"):
                # The last portal version left: closed to everyone rather than open to every
                # consumer of the cluster (the other products' applications included), until
                # the team decides.
                labels[CLOSED_LABEL] = "true"
        if labels:
            restriction["labels"] = labels
            plugins[RESTRICTION] = restriction
        elif restriction.get("consumers"):
            restriction.pop("labels", None)
            plugins[RESTRICTION] = restriction
        else:
            plugins.pop(RESTRICTION, None)
        cors.apply(route, plugins)
        if _save_plugins(author, version.cluster, route, plugins):
            changed.append(route.id)
    return changed


def sync_portal_cors(author: Author) -> dict[int, GatewayCluster]:
    """Every covered route's cors, for the portal's origins as they are now (its custom host name
    changed, say, or the control plane's address), and none left on routes no version covers.
    Returns the clusters changed."""
    clusters = {v.cluster_id: v.cluster for v in ProductVersion.objects.select_related("cluster")}
    clusters.update({r.cluster_id: r.cluster for r in RouteCors.objects.select_related("cluster")})
    changed: dict[int, GatewayCluster] = {}
    for cluster_id, cluster in sorted(clusters.items()):
        cors = _CorsSync(cluster)
        for route in catalog.routes_by_ids(cluster, sorted(cors.covered | set(cors.records))):
            plugins = dict(route.plugins)
            cors.apply(route, plugins)
            if _save_plugins(author, cluster, route, plugins):
                changed[cluster_id] = cluster
        # Records of routes deleted since: nothing to undo.
        RouteCors.objects.filter(pk__in=[record.pk for record in cors.records.values()]).delete()
    return changed


def _save_plugins(author: Author, cluster: GatewayCluster, route: Any, plugins: dict[str, Any]) -> bool:
    if plugins == route.plugins:
        return False
    catalog.save_route(
        author, cluster, {**catalog.route_spec(route), "plugins": plugins}, route, publish=False
    )
    return True


# --- cross-origin calls from the portal's pages -------------------------------------------------


def _origin(scheme: str, host: str, port: int | None) -> str:
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + ("" if port in (None, _DEFAULT_PORTS.get(scheme)) else f":{port}")


def portal_origins() -> list[str]:
    """The origins the portal's pages are served from, as a browser names them: the control
    plane's public address (`/portal/<slug>/`) and the portal's custom host name, if it has one
    (served with the same scheme, on its default port, as `developers.portal_url` links it)."""
    public = urlsplit(settings.PUBLIC_URL)
    scheme = (public.scheme or "http").lower()
    origins = {_origin(scheme, (public.hostname or "localhost").lower(), public.port)}
    custom = PortalSettings.objects.values_list("custom_host", flat=True).first()
    if custom:
        origins.add(_origin(scheme, custom.lower().rstrip("."), None))
    return sorted(origins)


def _header_parameters(document: Any) -> set[str]:
    """The request headers an OpenAPI document's operations take (the try-it panel sends them)."""
    names: set[str] = set()
    if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
        return names
    components = document.get("components")
    shared = components.get("parameters") if isinstance(components, dict) else None
    shared = shared if isinstance(shared, dict) else {}
    for item in document["paths"].values():
        if not isinstance(item, dict):
            continue
        lists = [item.get("parameters")] + [
            op.get("parameters") for op in item.values() if isinstance(op, dict)
        ]
        for parameters in lists:
            for parameter in parameters if isinstance(parameters, list) else []:
                ref = parameter.get("$ref") if isinstance(parameter, dict) else None
                if isinstance(ref, str) and ref.startswith("#/components/parameters/"):
                    parameter = shared.get(ref.rsplit("/", 1)[-1])
                if not isinstance(parameter, dict) or parameter.get("in") != "header":
                    continue
                name = parameter.get("name")
                if isinstance(name, str) and _HEADER_NAME.match(name):
                    names.add(name)
    return names


def _auth_headers(*sources: dict[str, Any]) -> list[str]:
    """The headers the route's authentication reads (its own plugins first, else its service's)."""
    for plugins in sources:
        headers = []
        if isinstance(plugins.get("key-auth"), dict):
            headers.append(plugins["key-auth"].get("header") or "apikey")
        if isinstance(plugins.get("jwt-auth"), dict):
            headers.append(plugins["jwt-auth"].get("header") or "Authorization")
        if "basic-auth" in plugins or "hmac-auth" in plugins:
            headers.append("Authorization")
        if headers:
            return headers
    return []


def _added(have: list[str], more: list[str], *, fold: bool = False) -> list[str]:
    seen = {item.lower() if fold else item for item in have}
    return [*have, *[item for item in more if (item.lower() if fold else item) not in seen]]


def portal_cors(
    base: dict[str, Any] | None, origins: list[str], headers: list[str], methods: list[str]
) -> dict[str, Any]:
    """The cors of a covered route: the portal's own when the route has none, else the route's
    (or its service's, or the cluster's) with the portal's origins, headers and the route's
    methods added where it lists them."""
    if base is None:
        return {
            "allow_origins": origins,
            "allow_headers": headers,
            "expose_headers": CORS_EXPOSED,
            "max_age": CORS_MAX_AGE,
        }
    merged = dict(base)
    if "*" not in base.get("allow_origins", []):
        merged["allow_origins"] = _added(list(base.get("allow_origins", [])), origins)
    if base.get("allow_headers"):  # none: the headers a preflight asks for are allowed
        merged["allow_headers"] = _added(list(base["allow_headers"]), headers, fold=True)
    if base.get("allow_methods") and methods:
        merged["allow_methods"] = _added(list(base["allow_methods"]), methods)
    return merged


class _CorsSync:
    """The portal's cors on one cluster's routes: on those some version covers (`covered`), and
    undone on the others. What the portal wrote is kept (RouteCors), so that the route gets its
    own setting back; a route whose cors was edited since keeps the edit, as the team's."""

    def __init__(
        self,
        cluster: GatewayCluster,
        *,
        exclude: ProductVersion | None = None,
        extra: ProductVersion | None = None,
    ) -> None:
        """`exclude`: a version whose stored routes no longer count (being changed or deleted);
        `extra`: one whose routes count as they are now."""
        self.cluster = cluster
        self.origins = portal_origins()
        self.records = {r.route_id: r for r in RouteCors.objects.filter(cluster=cluster)}
        self._global: dict[str, Any] | None = catalog.global_plugin_config(cluster, CORS)
        versions = ProductVersion.objects.filter(cluster=cluster)
        if exclude is not None and exclude.pk is not None:
            versions = versions.exclude(pk=exclude.pk)
        listed = list(versions) + ([extra] if extra is not None else [])
        self.headers: dict[int, set[str]] = {}  # covered route -> its documents' header parameters
        for version in listed:
            names = _header_parameters(version.openapi)
            for route_id in version.route_ids:
                self.headers.setdefault(route_id, set()).update(names)

    @property
    def covered(self) -> set[int]:
        return set(self.headers)

    def apply(self, route: Any, plugins: dict[str, Any]) -> None:
        """Set or undo the portal's cors in `plugins` (the route's, about to be saved)."""
        record = self.records.pop(route.id, None)
        current = plugins.get(CORS)
        own = record.own if record is not None and current == record.written else current
        wanted = None
        if route.id in self.headers:
            base = own if own is not None else route.service.plugins.get(CORS) or self._global
            headers = _auth_headers(plugins, route.service.plugins) + CORS_HEADERS
            headers = _added(headers, sorted(self.headers[route.id]), fold=True)[:MAX_CORS_HEADERS]
            wanted = portal_cors(base, self.origins, headers, list(route.methods))
            if wanted == base:  # what the route has (or inherits) lets the portal's pages through
                wanted = None
        if wanted is None:
            if own is None:
                plugins.pop(CORS, None)
            else:
                plugins[CORS] = own
            if record is not None:
                record.delete()
            return
        plugins[CORS] = wanted
        RouteCors.objects.update_or_create(
            cluster=self.cluster, route_id=route.id, defaults={"own": own, "written": wanted}
        )


# --- applications ------------------------------------------------------------------------------


def _strictest(plans: list[ProductPlan]) -> dict[str, Any] | None:
    """The limit-count of the plan allowing the fewest calls per second. A consumer holds one
    limit-count: an application with plans of several products in one cluster gets the strictest,
    never more than any plan it holds."""
    limited = [p for p in plans if p.limit_count and p.time_window]
    if not limited:
        return None
    plan = min(limited, key=lambda p: (p.limit_count or 0) / (p.time_window or 1))
    return {"count": plan.limit_count, "time_window": plan.time_window, "key": "consumer", "per_route": False}


def _wanted_credentials(application: Application) -> tuple[str | None, str | None]:
    key = decrypt_secret(application.key_ciphertext) if application.key_ciphertext else None
    return key, application.jwt_public_key_pem or None


def _sync_credentials(author: Author, consumer: Any, application: Application) -> bool:
    key, public_key = _wanted_credentials(application)
    have_key = have_jwt = False
    changed = False
    for credential in catalog.consumer_credentials(consumer):
        keep = (
            credential.type == "key-auth" and key is not None and catalog.key_matches(credential, key)
        ) or (
            credential.type == "jwt-auth"
            and public_key is not None
            and credential.jwt_public_key_pem == public_key
            and credential.jwt_algorithm == application.jwt_algorithm
            and credential.jwt_key == application.jwt_key
        )
        if keep and credential.type == "key-auth" and not have_key:
            have_key = True
        elif keep and credential.type == "jwt-auth" and not have_jwt:
            have_jwt = True
        else:
            catalog.delete_credential(author, credential, publish=False)
            changed = True
    if key is not None and not have_key:
        catalog.add_credential(author, consumer, {"type": "key-auth", "key": key}, publish=False)
        changed = True
    if public_key is not None and not have_jwt:
        catalog.add_credential(
            author,
            consumer,
            {
                "type": "jwt-auth",
                "key": application.jwt_key,
                "algorithm": application.jwt_algorithm,
                "public_key": public_key,
            },
            publish=False,
        )
        changed = True
    return changed


def sync_application(author: Author, application: Application) -> dict[int, GatewayCluster]:
    """Make the application's consumers match its subscriptions, credentials, plans and status.
    Returns the clusters whose consumers changed."""
    subscriptions = list(
        Subscription.objects.filter(application=application).select_related("version__cluster", "plan")
    )
    by_cluster: dict[int, list[Subscription]] = {}
    clusters: dict[int, GatewayCluster] = {}
    for subscription in subscriptions:
        cluster = subscription.version.cluster
        clusters[cluster.id] = cluster
        by_cluster.setdefault(cluster.id, []).append(subscription)
    enabled = (
        application.status == Application.ACTIVE and application.developer.status == DeveloperStatus.ACTIVE
    )
    changed: dict[int, GatewayCluster] = {}
    existing = {m.cluster_id: m for m in ApplicationConsumer.objects.filter(application=application)}
    for cluster_id, gone in existing.items():
        if cluster_id not in by_cluster:
            consumer = catalog.consumer_by_id(gone.cluster, gone.consumer_id)
            if consumer is not None:
                catalog.delete_consumer(author, consumer, publish=False)
                changed[cluster_id] = gone.cluster
            gone.delete()
    for cluster_id, held in by_cluster.items():
        cluster = clusters[cluster_id]
        limit = _strictest([s.plan for s in held])
        spec = {
            "username": application.consumer_username,
            "labels": {
                MANAGED_LABEL: MANAGED_VALUE,
                "portal-application": str(application.pk),
                **{s.version.access_label: SUBSCRIBED for s in held},
            },
            "plugins": {"limit-count": limit} if limit else {},
        }
        mapping = existing.get(cluster_id)
        consumer = catalog.consumer_by_id(cluster, mapping.consumer_id) if mapping else None
        if consumer is None:
            # One a rollback brought back, or left: the application's own, by its name.
            consumer = catalog.consumer_by_username(cluster, application.consumer_username)
            if consumer is not None:
                ApplicationConsumer.objects.update_or_create(
                    application=application, cluster=cluster, defaults={"consumer_id": consumer.id}
                )
        if consumer is None:
            consumer = catalog.save_consumer(author, cluster, spec, publish=False)
            ApplicationConsumer.objects.update_or_create(
                application=application, cluster=cluster, defaults={"consumer_id": consumer.id}
            )
            changed[cluster_id] = cluster
        elif catalog.consumer_spec(consumer) != {**spec, "plugins": consumer.plugins} or (
            _limit_of(consumer.plugins) != limit
        ):
            consumer = catalog.save_consumer(author, cluster, spec, consumer, publish=False)
            changed[cluster_id] = cluster
        if _sync_credentials(author, consumer, application):
            changed[cluster_id] = cluster
        if consumer.enabled != enabled:
            catalog.set_consumer_enabled(author, consumer, enabled, publish=False)
            changed[cluster_id] = cluster
    return changed


def _limit_of(plugins: dict[str, Any]) -> dict[str, Any] | None:
    config = plugins.get("limit-count")
    if not config:
        return None
    return {key: config.get(key) for key in ("count", "time_window", "key", "per_route")}


def release_application(author: Author, application: Application) -> dict[int, GatewayCluster]:
    """Delete the application's consumers (the application is going away)."""
    changed: dict[int, GatewayCluster] = {}
    for mapping in ApplicationConsumer.objects.filter(application=application).select_related("cluster"):
        consumer = catalog.consumer_by_id(mapping.cluster, mapping.consumer_id)
        if consumer is not None:
            catalog.delete_consumer(author, consumer, publish=False)
            changed[mapping.cluster_id] = mapping.cluster
        mapping.delete()
    return changed
