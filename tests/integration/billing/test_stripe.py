"""Billing with Stripe connected, through the real `stripe` library against a fake Stripe HTTP
server (tests/fakes/stripe_server.py) that records what it is sent: set-up, lazy customers and
checkout, hourly meter events sent exactly once, and webhooks verified by signature, each
handled once, in any order."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import stripe
from django.core.management import call_command

from billing import services
from billing.models import Invoice, MeterReport
from tenants.roles import Role
from tests.factories import add_calls
from tests.integration.billing.conftest import SECRET, subscribed
from tests.integration.billing.test_billing import url

pytestmark = pytest.mark.django_db


def test_set_up_is_idempotent_and_prices_the_tiers(stripe_fake):
    call_command("setup_stripe_billing")
    call_command("setup_stripe_billing")
    [meter] = stripe_fake.of_type("billing.meter")
    assert meter["event_name"] == "api_calls" and meter["event_time_window"] == "hour"
    prices = {p["lookup_key"]: p for p in stripe_fake.of_type("price")}
    assert set(prices) == {"pro_base_monthly", "pro_calls_monthly"}
    assert prices["pro_base_monthly"]["unit_amount"] == "4900"
    calls = prices["pro_calls_monthly"]
    assert calls["recurring"] == {"interval": "month", "usage_type": "metered", "meter": meter["id"]}
    assert (calls["billing_scheme"], calls["tiers_mode"]) == ("tiered", "graduated")
    assert calls["tiers"] == {
        "0": {"up_to": "5000000", "unit_amount": "0"},
        "1": {"up_to": "100000000", "unit_amount_decimal": "0.0002"},
        "2": {"up_to": "inf", "unit_amount_decimal": "0.0001"},
    }
    assert len(stripe_fake.of_type("product")) == 1
    # Days later (idempotency keys forgotten), a price archived meanwhile: made again, on the
    # plan's same product, not a new one.
    del stripe_fake.state.objects[calls["id"]]
    stripe_fake.state.by_idempotency.clear()
    call_command("setup_stripe_billing")
    [product] = stripe_fake.of_type("product")
    assert {p["product"] for p in stripe_fake.of_type("price")} == {product["id"]}
    assert len(stripe_fake.of_type("price")) == 2


def test_checkout_creates_the_customer_once_and_links_to_stripe(stripe_fake, world):
    call_command("setup_stripe_billing")
    org, owner = world.a.org, world.a.client(Role.OWNER)
    first = owner.post(url(org, "checkout/"), {"plan": "pro"}, format="json")
    assert first.status_code == 200 and first.json()["url"].startswith("https://stripe.test/")
    assert owner.post(url(org, "checkout/"), {"plan": "pro"}, format="json").status_code == 200
    [customer] = stripe_fake.requests_to("/v1/customers")
    assert customer.idempotency_key == f"customer-org-{org.id}"
    assert customer.params["metadata[organization_id]"] == str(org.id)
    session = stripe_fake.requests_to("/v1/checkout/sessions")[0].params
    assert (
        session["mode"] == "subscription"
        and session["customer"] == services.account_for(org).stripe_customer_id
    )
    assert session["subscription_data[metadata][plan]"] == "pro"
    assert owner.post(url(org, "portal/"), {}, format="json").json()["url"].startswith("https://stripe.test/")
    # Plans change through Stripe now, not directly; other roles cannot start a checkout.
    assert owner.post(url(org, "plan/"), {"plan": "pro"}, format="json").status_code == 409
    assert (
        world.a.client(Role.ADMIN).post(url(org, "checkout/"), {"plan": "pro"}, format="json").status_code
        == 403
    )


# Hours of one month, whatever today's date: a run past a month's first 45 minutes sends none of
# the month before's (Stripe has finalized it).
@pytest.mark.time_machine(datetime(2026, 11, 10, 12, 30, tzinfo=UTC), tick=True)
def test_meter_events_are_sent_once_per_organization_hour_and_resume_after_a_failure(stripe_fake, world):
    org = world.a.org
    subscribed(org)
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    hours = [now - timedelta(hours=h) for h in (3, 2, 1)]
    for hour, calls in zip(hours, (100, 200, 300), strict=True):
        add_calls(org, calls, hour)
    add_calls(org, 7, now)  # the hour still running: not reported yet
    stripe_fake.state.fail_meter_events_after = 1  # Stripe fails after the first event
    with pytest.raises(stripe.APIError):  # the run stops at the failure
        services.report_usage_to_stripe(org, now)
    stripe_fake.state.fail_meter_events_after = None
    assert services.report_usage_to_stripe(org, now) == 2  # the two left, not the first again
    assert services.report_usage_to_stripe(org, now) == 0  # the task run twice: nothing more
    events = sorted((o for o in stripe_fake.of_type("billing.meter_event")), key=lambda e: e["identifier"])
    assert [(e["identifier"], e["payload"]["value"]) for e in events] == [
        (f"org{org.id}-api_calls-{h:%Y%m%d%H}", str(c)) for h, c in zip(hours, (100, 200, 300), strict=True)
    ]
    assert all(e["payload"]["stripe_customer_id"] == "cus_42" for e in events)
    # A gateway reporting late: the hour's new total, as a revision that replaces it.
    add_calls(org, 5, hours[0])
    assert services.report_usage_to_stripe(org, now) == 1
    latest = stripe_fake.requests_to("/v1/billing/meter_events")[-1].params
    assert (latest["identifier"], latest["payload[value]"]) == (
        f"org{org.id}-api_calls-{hours[0]:%Y%m%d%H}-r1",
        "105",
    )
    # Sent, but the answer lost: sent again, Stripe refuses the known identifier, and that counts
    # as delivered.
    MeterReport.objects.filter(organization=org).update(sent_at=None)
    assert services.report_usage_to_stripe(org, now) == 3
    assert len(stripe_fake.of_type("billing.meter_event")) == 4


def _signed(payload: dict, secret: str = SECRET) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    timestamp = int(time.time())
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={timestamp},v1={signature}"


def _event(event_id: str, kind: str, obj: dict, created: int) -> dict:
    return {"id": event_id, "object": "event", "type": kind, "created": created, "data": {"object": obj}}


def _post_event(api, payload: dict, secret: str = SECRET):
    body, signature = _signed(payload, secret)
    return api.post(
        "/billing/stripe/webhook", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )


# The subscription's period (2026-11-15 to 2026-12-15) is the billing period only while it holds
# the clock: the clock is set inside it, whatever today's date.
@pytest.mark.time_machine(datetime(2026, 12, 1, 12, 0, tzinfo=UTC), tick=True)
def test_webhooks_are_verified_handled_once_and_safe_out_of_order(stripe_fake, world, api):
    org = world.a.org
    account = subscribed(org)
    start, end = (
        int(datetime(2026, 11, 15, tzinfo=UTC).timestamp()),
        int(datetime(2026, 12, 15, tzinfo=UTC).timestamp()),
    )
    subscription = {
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_42",
        "status": "active",
        "metadata": {"plan": "pro"},
        "items": {"data": [{"current_period_start": start, "current_period_end": end}]},
    }
    updated = _event("evt_2", "customer.subscription.updated", subscription, created=2000)
    forged = _post_event(api, updated, secret="whsec_wrong")
    assert forged.status_code == 400
    account.refresh_from_db()
    assert account.stripe_subscription_id == "" and account.period_start is None
    assert _post_event(api, updated).json() == {"received": True, "duplicate": False}
    assert _post_event(api, updated).json() == {"received": True, "duplicate": True}
    account.refresh_from_db()
    assert (account.plan, account.stripe_subscription_id, account.subscription_status) == (
        "pro",
        "sub_1",
        "active",
    )
    # The period comes from the subscription now, not the calendar month.
    summary = world.a.client(Role.OWNER).get(url(org)).json()
    assert (
        summary["period"]["start"] == "2026-11-15T00:00:00Z"
        and summary["period"]["end"] == "2026-12-15T00:00:00Z"
    )
    # An older event arriving late (created before the one applied) changes nothing.
    stale = _event(
        "evt_1", "customer.subscription.deleted", {**subscription, "status": "canceled"}, created=1000
    )
    assert _post_event(api, stale).status_code == 200
    account.refresh_from_db()
    assert account.plan == "pro"
    # Invoices are mirrored; a late, older state of one does not overwrite a newer one.
    invoice = {
        "id": "in_1",
        "object": "invoice",
        "customer": "cus_42",
        "number": "ABC-0001",
        "status": "paid",
        "amount_due": 5100,
        "currency": "usd",
        "period_start": start,
        "period_end": end,
        "hosted_invoice_url": "https://stripe.test/i/in_1",
        "invoice_pdf": "https://stripe.test/i/in_1.pdf",
    }
    _post_event(api, _event("evt_4", "invoice.paid", invoice, created=4000))
    _post_event(api, _event("evt_3", "invoice.finalized", {**invoice, "status": "open"}, created=3000))
    [mirrored] = Invoice.objects.filter(organization=org)
    assert (mirrored.number, mirrored.status, mirrored.amount_due_minor) == ("ABC-0001", "paid", 5100)
    listed = world.a.client(Role.BILLING).get(url(org, "invoices/")).json()["results"]
    assert (
        listed[0]["hosted_invoice_url"] == "https://stripe.test/i/in_1" and listed[0]["document_url"] is None
    )
    # Cancelled (newer): back to Free.
    _post_event(
        api,
        _event(
            "evt_5", "customer.subscription.deleted", {**subscription, "status": "canceled"}, created=5000
        ),
    )
    account.refresh_from_db()
    assert (account.plan, account.stripe_subscription_id) == ("free", "")
