"""The one way the control plane talks to Stripe: the official `stripe` library's client, with
our settings. Everything Stripe-shaped (ids, params, lookup keys) stays in this module."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import stripe
from django.conf import settings

from core.errors import Conflict

from .plans import Plan

# Prices are found again by these lookup keys: setting up twice creates nothing new.
BASE_PRICE_KEY = "{plan}_base_monthly"
CALLS_PRICE_KEY = "{plan}_calls_monthly"


class StripeNotConnected(RuntimeError):
    pass


def stripe_connected() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def _client() -> stripe.StripeClient:
    if not stripe_connected():
        raise StripeNotConnected("Stripe is not connected (STRIPE_SECRET_KEY is not set).")
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": settings.STRIPE_API_BASE},
        max_network_retries=2,
    )


@dataclass(frozen=True)
class PlanPrices:
    base: str | None
    calls: str | None


# The meter usage reporting needs (services.report_usage_to_stripe): each event is an hour's total
# under the customer's id, and a newer event in the same hour replaces the older one, so a
# corrected hour (a revision) and late usage carried into an hour are billed once. Meters are
# immutable at Stripe: one set up otherwise is refused, not worked around.
METER = {
    "default_aggregation": {"formula": "sum"},
    "event_time_window": "hour",
    "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
    "value_settings": {"event_payload_key": "value"},
}


class MeterUnfit(Conflict):
    """A meter with our event name exists in Stripe but does not aggregate as reporting needs."""


# What Stripe assumes for a meter made without customer_mapping or value_settings.
_STRIPE_DEFAULTS = {
    "customer_mapping.type": "by_id",
    "customer_mapping.event_payload_key": "stripe_customer_id",
    "value_settings.event_payload_key": "value",
}


def _flat(spec: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in spec.items():
        name = f"{prefix}{key}"
        out.update(_flat(value, f"{name}.") if isinstance(value, dict) else {name: value})
    return out


def _field(obj: Any, path: str) -> Any:
    for key in path.split("."):
        if obj is None:
            return None
        obj = obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)
    return obj


def meter_misfits(meter: Any) -> list[str]:
    """How an existing meter differs from METER, one phrase each (empty: it fits)."""
    misfits = []
    for name, wanted in _flat(METER).items():
        found = _field(meter, name)
        if found is None:
            found = _STRIPE_DEFAULTS.get(name)
        if found != wanted:
            misfits.append(f"{name} is {found!r}, not {wanted!r}")
    return misfits


def set_up_catalog(plans: list[Plan]) -> dict[str, PlanPrices]:
    """The meter, and for each self-serve paid plan a product with a monthly base price and a
    graduated, metered price for its calls. Idempotent: what exists (by event name, lookup key)
    is kept. An existing meter that does not aggregate as METER says is refused (MeterUnfit)
    before anything is created."""
    client = _client()
    event_name = settings.STRIPE_METER_EVENT_NAME
    meters = client.v1.billing.meters.list({"status": "active", "limit": 100})
    meter = next((m for m in meters.data if m.event_name == event_name), None)
    if meter is not None and (misfits := meter_misfits(meter)):
        raise MeterUnfit(
            f"The Stripe meter {meter.id} for event {event_name!r} cannot bill usage as reported "
            f"(one event per customer-hour, a later event replacing the hour's): "
            f"{'; '.join(misfits)}. Meters cannot be changed: deactivate it in Stripe, or set "
            "STRIPE_METER_EVENT_NAME to a new event name, and set up again."
        )
    if meter is None:
        params: Any = {"display_name": "API calls", "event_name": event_name, **METER}
        meter = client.v1.billing.meters.create(params)
    prices: dict[str, PlanPrices] = {}
    for plan in plans:
        if plan.custom or not (plan.base_fee_minor or plan.metered):
            continue
        keys = {
            "base": BASE_PRICE_KEY.format(plan=plan.slug),
            "calls": CALLS_PRICE_KEY.format(plan=plan.slug),
        }
        existing = client.v1.prices.list({"lookup_keys": list(keys.values())}).data
        found = {p.lookup_key: p.id for p in existing}
        # The plan's product: the one its prices already belong to, made only with its first price.
        product_id = str(existing[0].product) if existing else ""
        wanted = {keys["base"]} if plan.base_fee_minor else set()
        wanted |= {keys["calls"]} if plan.metered else set()
        if not product_id and wanted - found.keys():
            product_id = client.v1.products.create(
                {"name": f"{plan.name} plan", "metadata": {"plan": plan.slug}},
                {"idempotency_key": f"product-{plan.slug}"},
            ).id
        if keys["base"] not in found and plan.base_fee_minor:
            found[keys["base"]] = client.v1.prices.create(
                {
                    "product": product_id,
                    "currency": plan.currency,
                    "unit_amount": plan.base_fee_minor,
                    "recurring": {"interval": "month"},
                    "lookup_key": keys["base"],
                    "metadata": {"plan": plan.slug},
                },
                {"idempotency_key": f"price-{keys['base']}"},
            ).id
        if keys["calls"] not in found and plan.metered:
            tiers: list[dict[str, Any]] = [{"up_to": plan.included_calls, "unit_amount": 0}]
            for tier in plan.tiers:
                tiers.append(
                    {
                        "up_to": tier.up_to if tier.up_to is not None else "inf",
                        "unit_amount_decimal": str(tier.per_million_minor / 1_000_000),
                    }
                )
            found[keys["calls"]] = client.v1.prices.create(
                {
                    "product": product_id,
                    "currency": plan.currency,
                    "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
                    "billing_scheme": "tiered",
                    "tiers_mode": "graduated",
                    "tiers": tiers,  # type: ignore[typeddict-item]
                    "lookup_key": keys["calls"],
                    "metadata": {"plan": plan.slug},
                },
                {"idempotency_key": f"price-{keys['calls']}"},
            ).id
        prices[plan.slug] = PlanPrices(found.get(keys["base"]), found.get(keys["calls"]))
    return prices


def create_customer(organization_id: int, name: str, email: str) -> str:
    customer = _client().v1.customers.create(
        {"name": name, "email": email, "metadata": {"organization_id": str(organization_id)}},
        {"idempotency_key": f"customer-org-{organization_id}"},
    )
    return str(customer.id)


def checkout_url(customer_id: str, plan: Plan, success_url: str, cancel_url: str) -> str:
    client = _client()
    keys = [BASE_PRICE_KEY.format(plan=plan.slug), CALLS_PRICE_KEY.format(plan=plan.slug)]
    prices = client.v1.prices.list({"lookup_keys": keys}).data
    if not prices:
        raise StripeNotConnected(f"The {plan.name} plan has no prices in Stripe: run setup_stripe_billing.")
    line_items: list[dict[str, Any]] = [
        {"price": p.id, "quantity": 1} if p.lookup_key == keys[0] else {"price": p.id} for p in prices
    ]
    params: Any = {
        "mode": "subscription",
        "customer": customer_id,
        "line_items": line_items,
        "success_url": success_url,
        "cancel_url": cancel_url,
        "subscription_data": {"metadata": {"plan": plan.slug}},
    }
    session = client.v1.checkout.sessions.create(params)
    return str(session.url)


def portal_url(customer_id: str, return_url: str) -> str:
    session = _client().v1.billing_portal.sessions.create({"customer": customer_id, "return_url": return_url})
    return str(session.url)


class DuplicateMeterEvent(RuntimeError):
    pass


def send_meter_event(customer_id: str, calls: int, identifier: str, at: datetime) -> None:
    """One meter event; DuplicateMeterEvent when Stripe already has its identifier."""
    try:
        _client().v1.billing.meter_events.create(
            {
                "event_name": settings.STRIPE_METER_EVENT_NAME,
                "payload": {"stripe_customer_id": customer_id, "value": str(calls)},
                "identifier": identifier,
                "timestamp": int(at.timestamp()),
            }
        )
    except stripe.InvalidRequestError as exc:
        # Stripe refuses an identifier it has seen: "An event already exists with identifier ...".
        if (
            "already exists with identifier" in str(exc.user_message or exc)
            or exc.code == "duplicate_meter_event"
        ):
            raise DuplicateMeterEvent(identifier) from exc
        raise


def verified_event(payload: bytes, signature: str | None) -> stripe.Event:
    """The webhook event, once its signature checks out (stripe.SignatureVerificationError or
    ValueError otherwise)."""
    return stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)
