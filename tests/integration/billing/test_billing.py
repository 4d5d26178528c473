"""Billing run locally (no Stripe keys, the default): plans, usage against the allowance with
the cost so far and projected, plan changes, quotas announced once and enforced through the
gateways' snapshots, and monthly invoices made by the control plane."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core import mail
from django_tenants.utils import schema_context

from billing import services, tasks
from billing.models import Invoice
from saas.gateways.models import ConfigSnapshot, GatewayCluster
from saas.gateways.snapshots import snapshot_document
from saas.metering.services import BillingPeriod
from tenants.models import AuditEntry
from tenants.roles import Role
from tests.factories import add_calls, signed_up_on

pytestmark = pytest.mark.django_db


def url(org, path: str = "") -> str:
    return f"/api/v1/orgs/{org.slug}/billing/{path}"


def test_plans_are_listed_for_every_signed_in_user(world, api):
    assert api.get("/api/v1/plans/").status_code in (401, 403)
    plans = world.a.client(Role.VIEWER).get("/api/v1/plans/").json()["plans"]
    assert [p["slug"] for p in plans] == ["free", "pro", "enterprise"]
    pro = plans[1]
    assert (pro["base_fee_minor"], pro["included_calls"], pro["currency"]) == (4900, 5_000_000, "usd")


def test_usage_this_period_with_cost_so_far_and_projected(world):
    org = world.a.org
    owner = world.a.client(Role.OWNER)
    assert owner.post(url(org, "plan/"), {"plan": "pro"}, format="json").status_code == 200
    now = datetime.now(UTC)
    add_calls(org, 6_000_000, now)
    summary = world.a.client(Role.BILLING).get(url(org)).json()
    assert summary["plan"]["slug"] == "pro" and summary["stripe_connected"] is False
    assert (summary["calls"], summary["included_calls"]) == (6_000_000, 5_000_000)
    assert summary["cost_so_far_minor"] == 4900 + 200
    assert summary["projected_calls"] >= 6_000_000 and summary["projected_cost_minor"] >= 5100
    period = BillingPeriod.containing(now)
    assert summary["period"]["start"] == period.start.isoformat().replace("+00:00", "Z")
    assert AuditEntry.objects.filter(organization=org, action="billing.plan_changed").count() == 1
    # Organization B's billing shows none of A's calls.
    assert world.b.client(Role.OWNER).get(url(world.b.org)).json()["calls"] == 0


def test_plan_choices_are_checked_and_stripe_actions_need_stripe(world):
    org = world.a.org
    owner = world.a.client(Role.OWNER)
    for body, field in (({"plan": "gold"}, "plan"), ({"plan": "enterprise"}, "plan"), ({}, "plan")):
        answer = owner.post(url(org, "plan/"), body, format="json")
        assert answer.status_code == 400 and field in answer.json()["errors"], answer.content
    assert services.account_for(org).plan == "free"
    for action in ("checkout/", "portal/"):
        answer = owner.post(url(org, action), {"plan": "pro"} if action == "checkout/" else {}, format="json")
        assert answer.status_code == 409 and "not connected" in answer.json()["detail"]


def test_thresholds_are_announced_once_and_a_free_plan_over_quota_is_refused_until_upgraded(
    world, django_capture_on_commit_callbacks
):
    org = world.a.org
    with schema_context(org.schema_name):
        cluster = GatewayCluster.objects.create(name="prod")
    billing_member = world.a.user(Role.BILLING)
    now = datetime.now(UTC)
    add_calls(org, 799_999, now)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.check_quotas() == 0
    assert mail.outbox == []
    add_calls(org, 1, now)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.check_quotas()
        tasks.check_quotas()  # again: nothing new to say
    [eighty] = mail.outbox
    assert "80%" in eighty.subject and set(eighty.to) == {
        world.a.user(Role.OWNER).email,
        billing_member.email,
    }
    add_calls(org, 200_000, now)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.check_quotas() == 1
        assert tasks.check_quotas() == 0
    assert len(mail.outbox) == 2 and "100%" in mail.outbox[1].subject
    assert "429" in mail.outbox[1].body

    def quota_section():
        with schema_context(org.schema_name):
            latest = ConfigSnapshot.objects.filter(cluster=cluster).order_by("-version").first()
            return snapshot_document(latest)["quota"]

    blocked = quota_section()
    assert blocked["limit"] == 1_000_000 and blocked["name"] == "Free plan"
    assert blocked["resets_at"] == BillingPeriod.containing(now).end.strftime("%Y-%m-%dT%H:%M:%SZ")
    summary = world.a.client(Role.OWNER).get(url(org)).json()
    assert summary["quota"]["exceeded"] is True
    # Upgrading lifts it through the next snapshot.
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            world.a.client(Role.OWNER).post(url(org, "plan/"), {"plan": "pro"}, format="json").status_code
            == 200
        )
    assert quota_section() is None
    assert world.a.client(Role.OWNER).get(url(org)).json()["quota"]["exceeded"] is False


# The billing run bills the month before the clock's: the clock is set in November 2026, whatever
# today's date (and under SAAS_TEST_CLOCK_SHIFT_DAYS too).
@pytest.mark.time_machine(datetime(2026, 11, 15, 12, 0, tzinfo=UTC), tick=True)
def test_a_local_invoice_for_a_past_month_equals_the_rollups(world, time_machine):
    org = world.a.org
    signed_up_on(org, datetime(2026, 9, 1, tzinfo=UTC))
    time_machine.move_to(datetime(2026, 9, 20, 12, 0, tzinfo=UTC))  # on Pro since September
    assert (
        world.a.client(Role.OWNER).post(url(org, "plan/"), {"plan": "pro"}, format="json").status_code == 200
    )
    time_machine.move_to(datetime(2026, 11, 15, 12, 0, tzinfo=UTC))
    add_calls(org, 7_000_000, datetime(2026, 10, 1, 0, 0, tzinfo=UTC))  # the month's first minute
    add_calls(org, 1_500_000, datetime(2026, 10, 31, 23, 59, tzinfo=UTC))  # and its last
    add_calls(org, 9_999, datetime(2026, 11, 1, 0, 0, tzinfo=UTC))  # the next month's
    add_calls(org, 42, datetime(2026, 9, 30, 23, 59, tzinfo=UTC))  # the month before's
    assert tasks.issue_local_invoices() >= 1
    tasks.issue_local_invoices()  # again: the same invoice, not a second one
    [invoice] = Invoice.objects.filter(organization=org)
    assert (invoice.calls, invoice.period_start) == (8_500_000, datetime(2026, 10, 1, tzinfo=UTC))
    assert invoice.amount_due_minor == 4900 + 700  # 3.5 million beyond the allowance at $2/M
    listed = world.a.client(Role.BILLING).get(url(org, "invoices/")).json()["results"]
    assert [(i["number"], i["amount_due_minor"], i["source"]) for i in listed] == [
        (invoice.number, 5600, "local")
    ]
    html = world.a.client(Role.BILLING).get(listed[0]["document_url"])
    assert html.status_code == 200, (listed[0]["document_url"], html.content)
    assert b"56.00 USD" in html.content and invoice.number.encode() in html.content
    pdf = world.a.client(Role.BILLING).get(listed[0]["document_url"] + "?as=pdf")
    assert (
        pdf.status_code == 200
        and pdf["Content-Type"] == "application/pdf"
        and pdf.content.startswith(b"%PDF")
    )
    # B cannot read A's invoice, even by id.
    other = world.b.client(Role.OWNER).get(
        f"/api/v1/orgs/{world.b.org.slug}/billing/invoices/{invoice.id}/document/"
    )
    assert other.status_code == 404
