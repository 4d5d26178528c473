"""A developer's applications: each has an API key (shown once, rotatable) and may register a JWT
public key; it subscribes to product versions on a plan. Every change is made at the gateway
through the application's consumers (enforcement) and published in the same transaction."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from core import clock
from core.encryption import encrypt_secret
from core.errors import Forbidden, InvalidInput
from saas.catalog import services as catalog
from saas.gateways.services import Author
from saas.metering import services as metering
from tenants.audit import record_audit

from . import enforcement
from .developers import clean_text
from .models import (
    Application,
    ApplicationConsumer,
    AuthType,
    DeveloperStatus,
    PortalDeveloper,
    ProductPlan,
    ProductVersion,
    Subscription,
    save_unique,
)

JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384")


def application_view(application: Application) -> dict[str, Any]:
    return {
        "id": application.id,
        "name": application.name,
        "description": application.description,
        "status": application.status,
        "developer": application.developer.email,
        "key_prefix": application.key_prefix,
        "key_created_at": application.key_created_at,
        "jwt_key": application.jwt_key if application.jwt_public_key_pem else None,
        "jwt_algorithm": application.jwt_algorithm or None,
        "subscriptions": [
            {
                "id": s.id,
                "product": s.version.product.name,
                "product_id": s.version.product_id,
                "version": s.version.name,
                "version_id": s.version_id,
                "plan": s.plan.name,
                "plan_id": s.plan_id,
            }
            for s in application.subscriptions.select_related("version__product", "plan")
        ],
        "created_at": application.created_at,
    }


def _publish(author: Author, application: Application, reason: str) -> None:
    enforcement.publish_clusters(
        author, enforcement.sync_application(author, application), reason, ["consumers"]
    )


def _require_active(developer: PortalDeveloper) -> None:
    if developer.status == DeveloperStatus.PENDING:
        raise Forbidden("Your account is waiting for the team's approval.")
    if developer.status != DeveloperStatus.ACTIVE:
        raise Forbidden("Your account is suspended.")


def _new_key(application: Application) -> str:
    key = f"pk_{secrets.token_urlsafe(24)}"
    application.key_ciphertext = encrypt_secret(key)
    application.key_prefix = key[:9]
    application.key_created_at = clock.now()
    return key


@transaction.atomic
def create_application(
    author: Author, developer: PortalDeveloper, *, name: str, description: str
) -> tuple[Application, str]:
    """The application and its API key, which is shown this once."""
    _require_active(developer)
    name = clean_text(name, "name", 100, required=True)
    application = Application(
        developer=developer, name=name, description=clean_text(description, "description", 500)
    )
    key = _new_key(application)
    save_unique(application, "name", "You have an application with this name already.")
    record_audit(
        author.actor, author.organization, "portal.application.create", application, after={"name": name}
    )
    return application, key


@transaction.atomic
def rotate_key(author: Author, application: Application) -> str:
    """A new key; the old one stops working at the gateway with the same publish."""
    _require_active(application.developer)
    key = _new_key(application)
    application.save(update_fields=["key_ciphertext", "key_prefix", "key_created_at"])
    _publish(author, application, f"portal application {application.pk} key rotated")
    record_audit(
        author.actor,
        author.organization,
        "portal.application.rotate_key",
        application,
        after={"key_prefix": application.key_prefix},
    )
    return key


@transaction.atomic
def register_jwt_key(author: Author, application: Application, *, algorithm: str, public_key: str) -> None:
    _require_active(application.developer)
    public_key = clean_text(public_key, "public_key", 20_000, required=True)
    if algorithm not in JWT_ALGORITHMS:
        raise InvalidInput.field("algorithm", f"One of {', '.join(JWT_ALGORITHMS)}.")
    try:
        catalog.check_jwt_public_key(public_key, algorithm)
    except InvalidInput as exc:
        raise InvalidInput.field("public_key", exc.detail) from None
    application.jwt_algorithm, application.jwt_public_key_pem = algorithm, public_key.strip() + "\n"
    application.save(update_fields=["jwt_algorithm", "jwt_public_key_pem"])
    _publish(author, application, f"portal application {application.pk} JWT key")
    record_audit(
        author.actor,
        author.organization,
        "portal.application.jwt_key",
        application,
        after={"algorithm": algorithm, "jwt_key": application.jwt_key},
    )


@transaction.atomic
def delete_application(author: Author, application: Application) -> None:
    changed = enforcement.release_application(author, application)
    enforcement.publish_clusters(
        author, changed, f"portal application {application.pk} deleted", ["consumers"]
    )
    record_audit(
        author.actor,
        author.organization,
        "portal.application.delete",
        application,
        before={"name": application.name},
    )
    application.delete()


@transaction.atomic
def subscribe(
    author: Author, application: Application, version: ProductVersion, plan: ProductPlan
) -> Subscription:
    _require_active(application.developer)
    product = version.product
    if not product.published:
        raise InvalidInput.field("version", "This product is not published.")
    if version.status != ProductVersion.ACTIVE:
        raise InvalidInput.field(
            "version", f"{product.name} {version.name} is deprecated: subscribe to a newer version."
        )
    if plan.product_id != product.id:
        raise InvalidInput.field("plan", f"{plan.name} is not a plan of {product.name}.")
    if product.auth_type == AuthType.JWT_AUTH and not application.jwt_public_key_pem:
        raise InvalidInput.field(
            "version", f"{product.name} takes JWTs: register your application's public key first."
        )
    if application.status != Application.ACTIVE:
        raise Forbidden("This application is suspended.")
    subscription, created = Subscription.objects.update_or_create(
        application=application, version=version, defaults={"plan": plan}
    )
    _publish(author, application, f"portal application {application.pk} subscribed to {version}")
    record_audit(
        author.actor,
        author.organization,
        "portal.subscription.create" if created else "portal.subscription.update",
        application,
        after={"version": str(version), "plan": plan.name},
    )
    return subscription


@transaction.atomic
def unsubscribe(author: Author, subscription: Subscription) -> None:
    application = subscription.application
    before = {"version": str(subscription.version), "plan": subscription.plan.name}
    subscription.delete()
    _publish(author, application, f"portal application {application.pk} unsubscribed")
    record_audit(author.actor, author.organization, "portal.subscription.delete", application, before=before)


@transaction.atomic
def set_application_status(author: Author, application: Application, status: str) -> Application:
    """The team suspends an application (its credentials get 401 at the gateway at the next
    publish) or reinstates it."""
    if status not in (Application.ACTIVE, Application.SUSPENDED):
        raise InvalidInput.field("status", "active or suspended.")
    application = Application.objects.select_for_update().select_related("developer").get(pk=application.pk)
    before = application.status
    application.status = status
    application.save(update_fields=["status"])
    _publish(author, application, f"portal application {application.pk} {status}")
    record_audit(
        author.actor,
        author.organization,
        "portal.application.suspend" if status == Application.SUSPENDED else "portal.application.reinstate",
        application,
        before={"status": before},
        after={"status": status},
    )
    return application


# --- usage -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageRow:
    day: datetime
    application: str
    product: str
    version: str
    calls: int
    refused: int  # 4xx and 5xx answers among them


def usage_of(developer: PortalDeveloper, days: int = 30) -> list[UsageRow]:
    """The developer's calls per day, application and product version, over the last `days`."""
    end = clock.now()
    start = (end - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    mappings = list(
        ApplicationConsumer.objects.filter(application__developer=developer).select_related("application")
    )
    consumers: dict[int, list[str]] = {}
    application_of: dict[tuple[int, str], Application] = {}
    for mapping in mappings:
        name = mapping.application.consumer_username
        consumers.setdefault(mapping.cluster_id, []).append(name)
        application_of[(mapping.cluster_id, name)] = mapping.application
    version_of: dict[tuple[int, int], ProductVersion] = {}
    for version in ProductVersion.objects.select_related("product"):
        for route_id in version.route_ids:
            version_of.setdefault((version.cluster_id, route_id), version)
    totals: dict[tuple[datetime, str, str, str], list[int]] = {}
    for day, cluster_id, route_id, consumer, status_class, calls in metering.consumer_calls_by_day(
        consumers, start, end + timedelta(minutes=1)
    ):
        application = application_of.get((cluster_id, consumer))
        covering = version_of.get((cluster_id, route_id))
        if application is None:
            continue
        key = (
            day,
            application.name,
            covering.product.name if covering else "Other routes",
            covering.name if covering else "",
        )
        counts = totals.setdefault(key, [0, 0])
        counts[0] += calls
        if status_class in ("4xx", "5xx"):
            counts[1] += calls
    return [
        UsageRow(day, app, product, version, c[0], c[1])
        for (day, app, product, version), c in sorted(totals.items(), reverse=True)
    ]
