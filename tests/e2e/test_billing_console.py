"""The console's billing page in a real browser (Debian's Chromium driven by Playwright), against
the control plane as `make run` serves it, billing run locally (no Stripe keys).

An owner of an organization on Pro reads this period's usage as a chart with the allowance line
and the period's dates, the cost so far and projected; downgrades to Free and upgrades back to
Pro, each after a confirmation that states the new plan's price, the plan shown changing each
time; and opens last period's invoice, issued by the billing service, as PDF and as HTML.
Nothing here depends on today's date: the period is the one the control plane reports."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connections
from playwright.sync_api import Page, Route, expect

from billing import services
from saas.metering.services import BillingPeriod
from tenants.roles import Role
from tests.e2e.console_steps import button, dialog, read_api, screenshots, sign_in_as_member
from tests.factories import add_calls, make_org_with_cluster

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def day(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d}"


def test_an_owner_reads_the_period_changes_plans_down_and_back_up_and_opens_an_invoice(
    page: Page, control_plane: str
) -> None:
    org, _, cluster = make_org_with_cluster("production")
    account = services.account_for(org)
    account.plan = "pro"  # on Pro since before last period
    account.save()
    connections.close_all()
    sign_in_as_member(page, control_plane, org, "finance@example.com", Role.OWNER)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    # The period as the control plane counts it (its clock, not the test's).
    summary = read_api(page, f"{control_plane}/api/v1/orgs/{org.slug}/billing/")
    start = datetime.fromisoformat(summary["period"]["start"])
    end = datetime.fromisoformat(summary["period"]["end"])
    now = start + (end - start) * summary["period"]["elapsed_percent"] / 100
    add_calls(org, 1_200, start, cluster.id)
    add_calls(org, 3_400, max(start, now - timedelta(hours=1)), cluster.id)
    # Last period's calls, and its invoice issued by the service the monthly task runs.
    last_period = BillingPeriod.containing(start - timedelta(days=1))
    add_calls(org, 6_000_000, last_period.start + timedelta(days=3), cluster.id)
    invoice = services.issue_local_invoice(org, last_period)
    assert invoice.amount_due_minor == 4900 + 200  # a million past the allowance at $2
    connections.close_all()

    # This period: the dates, the chart with the allowance line, the cost so far and projected.
    page.get_by_role("link", name="Billing").click()
    plan = page.get_by_role("region", name="Plan")
    expect(plan.get_by_role("heading", name="Pro", exact=True)).to_be_visible()
    usage = page.get_by_role("region", name="Usage this period")
    period = usage.get_by_label("Billing period")
    expect(period.locator(f"time[datetime='{day(start)}']")).to_be_visible()
    expect(period.locator(f"time[datetime='{day(end - timedelta(seconds=1))}']")).to_be_visible()
    expect(usage.locator(".recharts-surface").first).to_be_visible()
    expect(usage.locator(".recharts-reference-line")).to_be_visible()
    expect(usage.get_by_text("Allowance 5,000,000")).to_be_visible()
    expect(usage.locator(".recharts-bar-rectangle").first).to_be_attached()  # calls per day
    cost = page.get_by_role("region", name="Cost this period")
    expect(cost.get_by_role("heading", name="$49.00")).to_be_visible()
    expect(cost).to_contain_text(re.compile(r"projected \$49\.00 by the end of the period"))
    expect(cost).to_contain_text("Projected linearly: the 4,600 calls so far")
    calls = page.get_by_role("region", name="Calls this period")
    expect(calls.get_by_role("heading", name="4,600")).to_be_visible()
    screenshots(page, "50-billing")

    # Down to Free: the confirmation states its price and what follows; the plan shown changes.
    button(plan, "Downgrade to Free").click()
    confirm = dialog(page)
    expect(confirm).to_contain_text("Free: $0.00 a month, 1,000,000 calls included")
    expect(confirm).to_contain_text("This period would cost $0.00 so far")
    expect(confirm).to_contain_text("You can change back at any time.")
    screenshots(page, "51-billing-downgrade")
    button(confirm, "Downgrade").click()
    expect(confirm).to_have_count(0)
    expect(plan.get_by_role("heading", name="Free", exact=True)).to_be_visible()
    expect(cost.get_by_role("heading", name="$0.00")).to_be_visible()
    assert read_api(page, f"{control_plane}/api/v1/orgs/{org.slug}/billing/")["plan"]["slug"] == "free"

    # Back up to Pro, the same way.
    button(plan, "Upgrade to Pro").click()
    confirm = dialog(page)
    expect(confirm).to_contain_text(
        "Pro: $49.00 a month, 5,000,000 calls included, then $2.00 per million calls up to 100,000,000"
    )
    expect(confirm).to_contain_text("This period would cost $49.00 so far")
    screenshots(page, "52-billing-upgrade")
    button(confirm, "Upgrade").click()
    expect(confirm).to_have_count(0)
    expect(plan.get_by_role("heading", name="Pro", exact=True)).to_be_visible()
    expect(button(plan, "Downgrade to Free")).to_be_visible()
    assert read_api(page, f"{control_plane}/api/v1/orgs/{org.slug}/billing/")["plan"]["slug"] == "pro"

    # Last period's invoice: its PDF, then its HTML, each opened from its link.
    invoices = page.get_by_role("table", name="Invoices")
    row = invoices.get_by_role("row").filter(has_text=invoice.number)
    expect(row).to_contain_text("$51.00")
    # What the browser receives (its PDF viewer then shows it): kept as it passes.
    received: dict[str, Any] = {}

    def keep(route: Route) -> None:
        answer = route.fetch()
        received.update(status=answer.status, headers=answer.headers, body=answer.body())
        route.fulfill(response=answer)

    page.context.route(re.compile(r"/document/\?as=pdf$"), keep)
    with page.context.expect_page() as pdf_page:
        row.get_by_role("link", name=f"Invoice {invoice.number} as PDF").click()
    pdf_page.value.wait_for_load_state()
    assert pdf_page.value.url.endswith(f"/billing/invoices/{invoice.id}/document/?as=pdf")
    assert received["status"] == 200 and received["headers"]["content-type"] == "application/pdf"
    assert received["body"].startswith(b"%PDF")
    pdf_page.value.close()
    with page.context.expect_page() as html_page:
        row.get_by_role("link", name=f"Invoice {invoice.number} as HTML").click()
    document = html_page.value
    expect(document.get_by_role("heading", name=f"Invoice {invoice.number}")).to_be_visible()
    expect(document.locator("tfoot")).to_contain_text("51.00 USD")
    document.close()
    screenshots(page, "53-billing-invoices")
