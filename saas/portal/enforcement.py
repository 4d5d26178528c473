"""What the gateway enforces for the portal, kept in the catalog through its service functions, so
nothing new runs on the data plane:

- a product version's routes require the product's authentication and let through only consumers
  labelled with the version's access label (the `consumer-restriction` plugin);
- an application is one catalog consumer per cluster it subscribes in (`portal-app-<id>`),
  labelled `managed-by: portal`, with one access label per subscribed version, the application's
  credentials, and its plan's `limit-count`; disabled while the application or its developer is
  suspended, so the gateway answers 401 to its credentials.

Every function here writes without publishing and returns the clusters it changed; the caller
publishes each once (`publish_clusters`), in the same transaction."""

from __future__ import annotations

from typing import Any

from core.encryption import decrypt_secret
from saas.catalog import services as catalog
from saas.gateways.services import Author, GatewayCluster

from .models import (
    Application,
    ApplicationConsumer,
    DeveloperStatus,
    ProductPlan,
    ProductVersion,
    Subscription,
)

MANAGED_LABEL = "managed-by"
MANAGED_VALUE = "portal"
RESTRICTION = "consumer-restriction"
SUBSCRIBED = "subscribed"
CLOSED_LABEL = "portal-closed"  # no consumer carries it
AUTH_PLUGINS = frozenset({"key-auth", "jwt-auth", "basic-auth", "hmac-auth"})


def publish_clusters(
    author: Author, clusters: dict[int, GatewayCluster], reason: str, sections: list[str]
) -> None:
    for cluster in clusters.values():
        catalog.publish_changes(author, cluster, reason, sections)


# --- routes ------------------------------------------------------------------------------------


def guard_routes(
    author: Author, version: ProductVersion, *, previous_route_ids: list[int], auth_type: str
) -> list[int]:
    """The version's routes require `auth_type` and admit its subscribers; routes it no longer
    covers stop admitting them. Returns the route ids changed."""
    label = version.access_label
    changed = []
    wanted = set(version.route_ids)
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
        if plugins != route.plugins:
            catalog.save_route(
                author,
                version.cluster,
                {**catalog.route_spec(route), "plugins": plugins},
                route,
                publish=False,
            )
            changed.append(route.id)
    return changed


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
