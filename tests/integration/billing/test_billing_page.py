"""What the console's billing page reads and does, billing run locally: this period day by day
with its dates and the projection, what each other plan would cost before changing to it, plan
changes down and back up (a downgrade cannot unbill the calls already made; a change made by
mistake and changed back costs nothing), and invoices as HTML and PDF. Every test pins its own
clock, so none depends on today's date (nor on SAAS_TEST_CLOCK_SHIFT_DAYS)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billing import services, tasks
from billing.models import BilledPeriod, Invoice, PlanChange
from tenants.models import AuditEntry
from tenants.roles import Role
from tests.factories import add_calls, signed_up_on
from tests.integration.billing.test_billing import url

pytestmark = pytest.mark.django_db


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def change_to(world, plan: str):
    """The owner changes the plan (a new session: the clock moves by weeks in these tests)."""
    return world.a.client(Role.OWNER).post(url(world.a.org, "plan/"), {"plan": plan}, format="json")


def summary(world, side: str = "a", role: str = Role.OWNER) -> dict:
    org_side = getattr(world, side)
    answer = org_side.client(role).get(url(org_side.org))
    assert answer.status_code == 200, answer.content
    return answer.json()


@pytest.mark.time_machine(at(2026, 11, 15, 12, 0), tick=False)
def test_this_period_day_by_day_with_its_dates_the_projection_and_what_a_downgrade_would_cost(world):
    org = world.a.org
    assert change_to(world, "pro").status_code == 200
    add_calls(org, 1_000_000, at(2026, 11, 1, 0, 0))  # the period's first minute
    add_calls(org, 2_000_000, at(2026, 11, 10, 23, 59))
    add_calls(org, 1_000_000, at(2026, 11, 15, 11, 0))
    add_calls(org, 42, at(2026, 10, 31, 23, 59))  # October's
    add_calls(org, 7, at(2026, 11, 1, 0, 0), cluster_id=2)  # another cluster: the same bill

    page = summary(world, role=Role.BILLING)

    assert page["period"] == {
        "start": "2026-11-01T00:00:00Z",
        "end": "2026-12-01T00:00:00Z",
        "elapsed_percent": 48.33,  # 14.5 days of 30
    }
    days = page["usage_by_day"]
    assert [day["day"] for day in days] == [f"2026-11-{n:02d}" for n in range(1, 31)]
    assert (days[0]["calls"], days[9]["calls"], days[14]["calls"]) == (1_000_007, 2_000_000, 1_000_000)
    assert days[1]["calls"] == 0 and days[15]["calls"] is None  # a quiet day; a day not begun
    assert page["calls"] == sum(day["calls"] or 0 for day in days) == 4_000_007
    # Linear: 4,000,007 calls over 14.5 days of 30, at $2 per million beyond 5,000,000.
    assert page["projected_calls"] == 8_275_876
    assert (page["cost_so_far_minor"], page["projected_cost_minor"]) == (4900, 4900 + 655)
    assert page["billed_plan"] == "pro"
    # Before changing: Free would refuse calls at once, and not unbill the calls made on Pro.
    [free] = page["plan_changes"]
    assert (free["plan"]["slug"], free["plan"]["base_fee_minor"], free["change"]) == ("free", 0, "downgrade")
    assert free["calls_refused"] is True and free["billed_plan"] == "pro"
    assert (free["cost_so_far_minor"], free["projected_cost_minor"]) == (4900, 4900)
    # Organization B's chart shows none of A's calls.
    other = summary(world, "b")
    assert {day["calls"] for day in other["usage_by_day"]} == {0, None}
    assert other["plan_changes"][0]["change"] == "upgrade"


@pytest.mark.time_machine(at(2026, 11, 2, 9, 0), tick=False)
def test_a_plan_is_downgraded_and_upgraded_back_and_each_period_billed_at_what_was_used(
    world, time_machine, django_capture_on_commit_callbacks
):
    org = world.a.org
    add_calls(org, 500, at(2026, 11, 2, 8, 0))

    # Pro by mistake, changed back at once: this period still costs nothing.
    assert change_to(world, "pro").json()["plan"]["slug"] == "pro"
    back = change_to(world, "free").json()
    assert (back["plan"]["slug"], back["billed_plan"], back["cost_so_far_minor"]) == ("free", "free", 0)
    assert len(back["usage_by_day"]) == 30  # the answer is the page's summary
    again = change_to(world, "free")
    assert again.status_code == 400
    assert again.json()["errors"] == {"plan": ["The organization is on the Free plan already."]}

    # Pro for real: 3 million calls, then down to Free. Allowed, and the page said what follows:
    # calls refused until the period ends, and the period still billed at Pro.
    time_machine.move_to(at(2026, 11, 5, 9, 0), tick=False)
    assert change_to(world, "pro").status_code == 200
    add_calls(org, 3_000_000, at(2026, 11, 6, 12, 0))
    time_machine.move_to(at(2026, 11, 20, 9, 0), tick=False)
    [offer] = summary(world)["plan_changes"]
    assert (offer["calls_refused"], offer["billed_plan"], offer["cost_so_far_minor"]) == (True, "pro", 4900)
    with django_capture_on_commit_callbacks(execute=True):
        down = change_to(world, "free")
    assert down.status_code == 200, down.content
    down = down.json()
    assert (down["plan"]["slug"], down["billed_plan"], down["cost_so_far_minor"]) == ("free", "pro", 4900)
    assert down["quota"] == {"exceeded": True, "resets_at": "2026-12-01T00:00:00Z"}
    [up] = down["plan_changes"]
    assert (up["plan"]["slug"], up["change"], up["calls_refused"]) == ("pro", "upgrade", False)

    # Changed back up: calls answered again.
    time_machine.move_to(at(2026, 11, 21, 9, 0), tick=False)
    up_again = change_to(world, "pro").json()
    assert up_again["quota"]["exceeded"] is False and up_again["plan"]["slug"] == "pro"
    # And down again for December: November's invoice bills its calls at Pro all the same.
    time_machine.move_to(at(2026, 11, 30, 23, 0), tick=False)
    assert change_to(world, "free").status_code == 200
    changes = PlanChange.objects.filter(organization=org)
    assert [(c.from_plan, c.to_plan, c.calls) for c in changes] == [
        ("free", "pro", 500),
        ("pro", "free", 500),
        ("free", "pro", 500),
        ("pro", "free", 3_000_500),
        ("free", "pro", 3_000_500),
        ("pro", "free", 3_000_500),
    ]
    assert AuditEntry.objects.filter(organization=org, action="billing.plan_changed").count() == 6

    time_machine.move_to(at(2026, 12, 1, 0, 30), tick=False)
    tasks.issue_local_invoices()
    november = Invoice.objects.get(organization=org, period_start=at(2026, 11, 1))
    assert (november.plan, november.calls, november.amount_due_minor) == ("pro", 3_000_500, 4900)
    assert november.lines[0]["description"] == "Pro plan, 2026-11 (calls past the Free allowance)"
    assert BilledPeriod.objects.get(organization=org, period_start=at(2026, 11, 1)).plan == "pro"
    # December starts on Free, with Free's allowance.
    december = summary(world)
    assert (december["plan"]["slug"], december["billed_plan"], december["cost_so_far_minor"]) == (
        "free",
        "free",
        0,
    )


@pytest.mark.time_machine(at(2026, 12, 1, 0, 30), tick=False)
def test_a_month_is_billed_at_the_plan_it_ended_on_not_one_chosen_after_it(world, time_machine):
    org = world.a.org
    signed_up_on(org, at(2026, 11, 1, 0, 0))
    add_calls(org, 900_000, at(2026, 11, 20, 12, 0))
    # An upgrade in December's first minutes, before November's invoice is issued.
    time_machine.move_to(at(2026, 12, 1, 0, 5), tick=False)
    assert change_to(world, "pro").status_code == 200
    time_machine.move_to(at(2026, 12, 1, 0, 30), tick=False)
    tasks.issue_local_invoices()
    november = Invoice.objects.get(organization=org, period_start=at(2026, 11, 1))
    assert (november.plan, november.amount_due_minor, november.status) == ("free", 0, "paid")


def test_a_contract_plan_is_not_changed_here_and_checks_name_the_field(world):
    org = world.a.org
    account = services.account_for(org)
    account.plan = "enterprise"
    account.save()
    answer = change_to(world, "free")
    assert answer.status_code == 400
    assert answer.json()["errors"] == {
        "plan": ["The Enterprise plan is a contract: contact sales@example.com to change it."]
    }
    page = summary(world)
    assert page["plan"]["slug"] == "enterprise" and page["plan_changes"] == []
    assert services.account_for(org).plan == "enterprise"


@pytest.mark.time_machine(at(2026, 11, 15, 12, 0), tick=True)
def test_invoices_link_their_html_and_pdf_whatever_the_organization_is_called(world):
    org = world.a.org
    org.name = "Łódź — 東京 Café"
    org.save()
    add_calls(org, 1234, at(2026, 10, 3, 12, 0))
    invoice = services.issue_local_invoice(org, services.BillingPeriod.parse("2026-10"))
    billing = world.a.client(Role.BILLING)

    [listed] = billing.get(url(org, "invoices/")).json()["results"]
    base = f"/api/v1/orgs/{org.slug}/billing/invoices/{invoice.id}/document/"
    assert (listed["html_url"], listed["pdf_url"]) == (base, f"{base}?as=pdf")
    html = billing.get(listed["html_url"])
    assert html["Content-Type"] == "text/html; charset=utf-8"
    assert "Łódź — 東京 Café" in html.content.decode() and invoice.number in html.content.decode()
    pdf = billing.get(listed["pdf_url"])
    assert pdf.status_code == 200, pdf.content
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert f'filename="{invoice.number}.pdf"' in pdf["Content-Disposition"]
    wrong = billing.get(f"{base}?as=docx")
    assert wrong.status_code == 400 and wrong.json()["errors"] == {"as": ["html or pdf."]}
    # A viewer cannot read it; nor can organization B, even by id.
    assert world.a.client(Role.VIEWER).get(listed["pdf_url"]).status_code == 403
    assert world.b.client(Role.OWNER).get(base.replace(org.slug, world.b.org.slug)).status_code == 404
