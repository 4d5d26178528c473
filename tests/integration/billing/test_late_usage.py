"""Late usage: calls of a month reaching the rollups after the month was billed (an agent
offline for days delivers its spool) are carried once into the next bill, labelled, on local
invoices and in Stripe's meter alike; the meter set-up refuses a meter that would bill them
wrongly. Every test pins its own clock, so none depends on today's date (nor on
SAAS_TEST_CLOCK_SHIFT_DAYS)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import stripe
from django.core.management import CommandError, call_command

from billing import late_usage, services, stripe_api, tasks
from billing.models import BilledPeriod, Invoice, LateUsage, MeterReport
from core.errors import Conflict
from tenants.models import AuditEntry
from tenants.roles import Role
from tests.factories import add_calls, signed_up_on
from tests.integration.billing.conftest import subscribed
from tests.integration.billing.test_billing import url

pytestmark = pytest.mark.django_db


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


OCTOBER_LINE = {
    "description": "Late usage from 2026-10: 1,234,000 calls",
    "quantity": 1_234_000,
    # Priced as if on time: October's 6,000,000 billed, 7,234,000 now, at $2 per million beyond
    # 5,000,000: 5,347 - 5,100 cents.
    "amount_minor": 247,
    "kind": "late_usage",
    "from_period": "2026-10",
}


@pytest.mark.time_machine(at(2026, 11, 1, 0, 30), tick=False)
def test_late_usage_of_an_invoiced_month_is_one_line_of_the_next_local_invoice(
    world, time_machine, api, settings
):
    org = world.a.org
    signed_up_on(org, at(2026, 9, 1, 0, 0))
    owner = world.a.client(Role.OWNER)
    time_machine.move_to(at(2026, 10, 1, 0, 0), tick=False)  # on Pro for October
    pro = world.a.client(Role.OWNER).post(url(org, "plan/"), {"plan": "pro"}, format="json")
    assert pro.status_code == 200
    time_machine.move_to(at(2026, 11, 1, 0, 30), tick=False)
    add_calls(org, 6_000_000, at(2026, 10, 12, 9, 0))
    tasks.issue_local_invoices()
    [october] = Invoice.objects.filter(organization=org)
    assert (october.amount_due_minor, len(october.lines)) == (5100, 2)
    assert tasks.carry_late_usage() == 0  # nothing late: nothing carried

    # November 9: an agent offline since October 30 delivers its spool.
    time_machine.move_to(at(2026, 11, 9, 15, 0), tick=False)
    add_calls(org, 1_234_000, at(2026, 10, 30, 23, 59))
    add_calls(org, 100, at(2026, 11, 9, 14, 0))  # November's own
    tasks.issue_local_invoices()
    tasks.issue_local_invoices()  # run twice: carried once
    assert tasks.carry_late_usage() == 0
    [carry] = LateUsage.objects.filter(organization=org)
    assert (carry.calls, carry.amount_minor, carry.description) == (
        1_234_000,
        247,
        "Late usage from 2026-10: 1,234,000 calls",
    )
    [audit] = AuditEntry.objects.filter(organization=org, action="billing.late_usage_carried")
    assert audit.changes["after"]["calls"] == 1_234_000
    assert late_usage.late_usage_calls() == 1_234_000
    settings.SAAS_METRICS_TOKEN = "metrics-token"
    scrape = api.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token")
    assert "\nsaas_billing_late_usage_calls 1234000\n" in scrape.content.decode()
    october.refresh_from_db()
    assert october.amount_due_minor == 5100  # a final invoice is not changed
    summary = owner.get(url(org)).json()
    assert summary["late_usage"] == [OCTOBER_LINE]
    assert summary["cost_so_far_minor"] == 4900 + 247

    # December's first hour: November's invoice bills it as a line of its own, once.
    time_machine.move_to(at(2026, 12, 1, 0, 30), tick=False)
    tasks.issue_local_invoices()
    tasks.issue_local_invoices()
    november = Invoice.objects.get(organization=org, period_start=at(2026, 11, 1))
    assert november.calls == 100 and november.lines[2:] == [OCTOBER_LINE]
    assert november.amount_due_minor == 4900 + 247
    owner = world.a.client(Role.OWNER)  # a session of a month ago has expired
    assert owner.get(url(org)).json()["late_usage"] == []
    listed = world.a.client(Role.BILLING).get(url(org, "invoices/")).json()["results"]
    assert [(i["number"], i["late_usage"]) for i in listed] == [
        (
            november.number,
            [OCTOBER_LINE],
        ),
        (october.number, []),
    ]
    html = world.a.client(Role.BILLING).get(listed[0]["document_url"]).content
    assert (
        b"Late usage from 2026-10: 1,234,000 calls" in html and b"2.47 USD" in html and b"51.47 USD" in html
    )
    pdf = world.a.client(Role.BILLING).get(listed[0]["document_url"] + "?as=pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    # January: no late usage, no line.
    time_machine.move_to(at(2027, 1, 1, 0, 30), tick=False)
    tasks.issue_local_invoices()
    december = Invoice.objects.get(organization=org, period_start=at(2026, 12, 1))
    assert len(december.lines) == 2 and december.amount_due_minor == 4900
    assert LateUsage.objects.filter(organization=org).count() == 1
    # Organization B was billed none of it.
    assert not LateUsage.objects.filter(organization=world.b.org).exists()


@pytest.mark.time_machine(at(2026, 10, 31, 22, 30), tick=False)
def test_late_usage_after_stripe_finalized_the_month_rides_in_this_months_meter_events(
    stripe_fake, world, time_machine, api
):
    org = world.a.org
    subscribed(org)
    events = "/v1/billing/meter_events"
    add_calls(org, 100, at(2026, 10, 5, 10, 10))
    add_calls(org, 200, at(2026, 10, 31, 21, 10))
    assert tasks.report_usage_to_stripe() == 2

    # Within Stripe's finalization grace, October's last hours and corrections still go to October.
    time_machine.move_to(at(2026, 11, 1, 0, 20), tick=False)
    add_calls(org, 50, at(2026, 10, 31, 21, 40))
    add_calls(org, 30, at(2026, 10, 31, 23, 5))
    assert tasks.report_usage_to_stripe() == 2  # hour 21 as revision 1 (250), hour 23 (30)

    # Past the grace, October is closed with what Stripe had of it.
    time_machine.move_to(at(2026, 11, 1, 1, 10), tick=False)
    assert tasks.report_usage_to_stripe() == 0
    [october] = BilledPeriod.objects.filter(organization=org)
    assert (october.label, october.source, october.calls) == ("2026-10", "stripe", 380)
    assert tasks.carry_late_usage() == 0  # nothing late yet

    # An agent offline since October 31 delivers its spool: October's hour is not sent again
    # (Stripe would bill it nowhere); its calls ride in this month's meter events instead.
    time_machine.move_to(at(2026, 11, 1, 5, 20), tick=False)
    sent_before = len(stripe_fake.requests_to(events))
    add_calls(org, 1_234, at(2026, 10, 31, 21, 50))
    add_calls(org, 10, at(2026, 11, 1, 5, 5))  # November's own, in the hour it is carried into
    tasks.report_usage_to_stripe()
    tasks.report_usage_to_stripe()  # twice: carried once
    [carry] = LateUsage.objects.filter(organization=org)
    assert (carry.calls, carry.meter_hour, carry.amount_minor) == (1_234, at(2026, 11, 1, 5), None)
    assert len(stripe_fake.requests_to(events)) == sent_before  # the hour is not complete yet
    assert AuditEntry.objects.filter(organization=org, action="billing.late_usage_carried").count() == 1

    time_machine.move_to(at(2026, 11, 1, 6, 5), tick=False)
    assert tasks.report_usage_to_stripe() == 1
    assert tasks.report_usage_to_stripe() == 0
    after_grace = stripe_fake.requests_to(events)[sent_before:]
    assert [
        (r.params["identifier"], r.params["payload[value]"], int(r.params["timestamp"])) for r in after_grace
    ] == [(f"org{org.id}-api_calls-2026110105", "1244", int(at(2026, 11, 1, 5).timestamp()))]
    # A retry of it is a duplicate at Stripe, not a second bill.
    MeterReport.objects.filter(organization=org, hour=at(2026, 11, 1, 5)).update(sent_at=None)
    assert tasks.report_usage_to_stripe() == 1
    assert len(stripe_fake.requests_to(events)) == sent_before + 2
    assert len(stripe_fake.of_type("billing.meter_event")) == len(stripe_fake.state.meter_identifiers)
    assert late_usage.late_usage_calls() == 1_234

    # The console shows it: this period's summary, then November's invoice once Stripe sends it.
    owner = world.a.client(Role.OWNER)
    line = {
        "description": "Late usage from 2026-10: 1,234 calls",
        "quantity": 1_234,
        "amount_minor": None,
        "kind": "late_usage",
        "from_period": "2026-10",
    }
    summary = owner.get(url(org)).json()
    assert summary["late_usage"] == [line] and summary["calls"] == 10
    services.handle_stripe_event(
        {
            "id": "evt_in_nov",
            "type": "invoice.finalized",
            "created": int(at(2026, 12, 1, 1).timestamp()),
            "data": {
                "object": {
                    "id": "in_nov",
                    "customer": "cus_42",
                    "status": "open",
                    "amount_due": 4900,
                    "period_start": int(at(2026, 11, 1).timestamp()),
                    "period_end": int(at(2026, 12, 1).timestamp()),
                }
            },
        }
    )
    [mirrored] = owner.get(url(org, "invoices/")).json()["results"]
    assert mirrored["late_usage"] == [line]


@pytest.mark.time_machine(at(2026, 11, 30, 23, 10), tick=False)
def test_a_carry_stripe_did_not_get_before_its_month_closed_is_carried_again(
    stripe_fake, world, time_machine
):
    org = world.a.org
    subscribed(org)
    BilledPeriod.objects.create(
        organization=org,
        source="stripe",
        period_start=at(2026, 10, 1),
        period_end=at(2026, 11, 1),
        plan="pro",
        calls=1_000,
        closed_at=at(2026, 11, 1, 1),
    )
    add_calls(org, 1_077, at(2026, 10, 20, 10, 0))  # 77 arrived after October closed
    tasks.report_usage_to_stripe()
    [first] = LateUsage.objects.filter(organization=org)
    assert (first.calls, first.meter_hour) == (77, at(2026, 11, 30, 23))
    # Stripe is unreachable until November is final.
    stripe_fake.state.fail_meter_events_after = 0
    time_machine.move_to(at(2026, 12, 1, 0, 30), tick=False)
    assert tasks.report_usage_to_stripe() == 0  # the event failed; the task logs it
    time_machine.move_to(at(2026, 12, 1, 1, 5), tick=False)
    stripe_fake.state.fail_meter_events_after = None
    tasks.report_usage_to_stripe()
    first.refresh_from_db()
    assert first.voided_at is not None  # November closed without it
    assert AuditEntry.objects.filter(organization=org, action="billing.late_usage_voided").count() == 1
    [again] = LateUsage.objects.filter(organization=org, voided_at=None)
    assert (again.calls, again.sequence, again.meter_hour) == (77, 2, at(2026, 12, 1, 1))
    time_machine.move_to(at(2026, 12, 1, 2, 5), tick=False)
    assert tasks.report_usage_to_stripe() == 1
    [event] = stripe_fake.of_type("billing.meter_event")
    assert (event["identifier"], event["payload"]["value"]) == (f"org{org.id}-api_calls-2026120101", "77")
    assert late_usage.late_usage_calls() == 77
    assert tasks.carry_late_usage() == 0


# --- the meter ----------------------------------------------------------------------------------


def _meter(stripe_fake, **fields) -> str:
    client = stripe.StripeClient("sk_test_fake", base_addresses={"api": stripe_fake.url})
    return client.v1.billing.meters.create({"display_name": "Calls", "event_name": "api_calls", **fields}).id


def test_an_existing_meter_that_aggregates_as_needed_is_reused(stripe_fake):
    meter = _meter(stripe_fake, default_aggregation={"formula": "sum"}, event_time_window="hour")
    call_command("setup_stripe_billing")
    assert [m["id"] for m in stripe_fake.of_type("billing.meter")] == [meter]
    calls = next(p for p in stripe_fake.of_type("price") if p["lookup_key"] == "pro_calls_monthly")
    assert calls["recurring"]["meter"] == meter


@pytest.mark.parametrize(
    ("fields", "misfit"),
    [
        (
            {"default_aggregation": {"formula": "count"}, "event_time_window": "hour"},
            "default_aggregation.formula is 'count', not 'sum'",
        ),
        (
            {"default_aggregation": {"formula": "last"}, "event_time_window": "hour"},
            "default_aggregation.formula is 'last', not 'sum'",
        ),
        ({"default_aggregation": {"formula": "sum"}}, "event_time_window is None, not 'hour'"),
        (
            {"default_aggregation": {"formula": "sum"}, "event_time_window": "day"},
            "event_time_window is 'day', not 'hour'",
        ),
        (
            {
                "default_aggregation": {"formula": "sum"},
                "event_time_window": "hour",
                "value_settings": {"event_payload_key": "calls"},
            },
            "value_settings.event_payload_key is 'calls', not 'value'",
        ),
        (
            {
                "default_aggregation": {"formula": "sum"},
                "event_time_window": "hour",
                "customer_mapping": {"type": "by_id", "event_payload_key": "customer"},
            },
            "customer_mapping.event_payload_key is 'customer', not 'stripe_customer_id'",
        ),
    ],
)
def test_a_meter_that_would_bill_wrongly_is_refused_with_the_reason(stripe_fake, fields, misfit):
    meter = _meter(stripe_fake, **fields)
    with pytest.raises(CommandError) as refused:
        call_command("setup_stripe_billing")
    assert misfit in str(refused.value) and meter in str(refused.value)
    assert "STRIPE_METER_EVENT_NAME" in str(refused.value)
    assert stripe_fake.of_type("price") == [] and stripe_fake.of_type("product") == []
    with pytest.raises(Conflict):  # the service error the API and commands show
        stripe_api.set_up_catalog([])
