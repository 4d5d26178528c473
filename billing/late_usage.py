"""Late usage: calls of a period that reach the rollups after the period was billed (a gateway's
agent offline for days delivers its spool when it comes back). They are carried, once, into the
next bill as a labelled adjustment: never dropped, never billed twice.

- A period is *closed* with a `BilledPeriod` recording the organization's own calls it was
  billed for. Billing run locally: when its invoice is issued (`services.issue_local_invoice`).
  With Stripe: `close_stripe_period`, CLOSE_AFTER its end, from the hourly totals Stripe
  confirmed; its hours are sent to the meter only until SEND_CUTOFF after its end (inside Stripe's
  finalization grace, 1 hour by default), so what was billed is known exactly.
- `carry_late_usage` compares, for each closed period of the last LATE_USAGE_WINDOW, the rollups
  now with what was billed and what was carried already, and carries a positive difference as a
  `LateUsage` row ("Late usage from 2026-10: 1,234 calls") with an audit entry, under a lock on
  the organization's billing account and a unique (period, sequence): run twice or concurrently,
  it carries once.
- Locally, the next invoice issued takes the carries as lines, priced at the closed period's plan
  as if the calls had arrived in time (the graduated tiers continue from what was billed).
- With Stripe, a carry rides in the meter event of one hour of the open period (the meter keeps
  the latest event of each hour, so it is added to that hour's own calls: same deterministic
  identifiers, a new revision when the hour was sent already). Stripe prices it with the open
  period's usage. A carry Stripe had not confirmed when its hour's period closed is voided and
  carried again."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from core import clock
from saas.metering.services import BillingPeriod, billable_calls, calls_in_periods
from tenants.audit import Actor, record_audit
from tenants.models import Organization

from . import stripe_api
from .models import BilledPeriod, BillingAccount, Invoice, LateUsage, MeterReport
from .plans import Plan, all_plans, get_plan
from .pricing import period_cost_minor

SEND_CUTOFF = timedelta(minutes=45)  # a closed period's hours are sent until then, not after
CLOSE_AFTER = timedelta(hours=1)  # Stripe finalizes the period's invoice by then (its default grace)
LATE_USAGE_WINDOW = timedelta(days=92)  # closed periods that still take late usage
SYSTEM = Actor(user=None)


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + timedelta(hours=1)


def period_boundary(account: BillingAccount, now: datetime) -> datetime:
    """Where the period holding `now` began: the Stripe subscription's period (its end, once
    passed, until the renewal's webhook arrives), else the UTC calendar month."""
    month = BillingPeriod.containing(now).start
    if account.period_start and account.period_end:
        if account.period_start <= now < account.period_end:
            return account.period_start
        if now >= account.period_end:
            return max(account.period_end, month)
    return month


def _closed_through(organization: Organization) -> datetime | None:
    return (
        BilledPeriod.objects.filter(organization=organization)
        .order_by("-period_end")
        .values_list("period_end", flat=True)
        .first()
    )


def stripe_sendable_from(organization: Organization, account: BillingAccount, now: datetime) -> datetime:
    """The first hour whose meter event may still be sent: the open period's, and during the first
    SEND_CUTOFF of it the previous period's too (Stripe still bills them then), never a closed
    one's. Hours straddling a boundary count in the period they start in, as at Stripe."""
    boundary = period_boundary(account, now)
    if now >= boundary + SEND_CUTOFF:
        return ceil_hour(boundary)
    return _closed_through(organization) or datetime.min.replace(tzinfo=UTC)


def _locked_account(organization: Organization) -> BillingAccount:
    BillingAccount.objects.get_or_create(organization=organization)
    return BillingAccount.objects.select_for_update().get(organization=organization)


def close_stripe_period(organization: Organization, now: datetime | None = None) -> BilledPeriod | None:
    """Once the period before the open one is final at Stripe (CLOSE_AFTER its end), record what
    Stripe billed of it: the hourly totals it confirmed, since the previous close (or the start of
    the period of the first hour ever reported). Carries Stripe had not confirmed in it are
    voided, to be carried again."""
    now = now or clock.now()
    account = BillingAccount.objects.filter(organization=organization).first()
    if account is None or not account.stripe_customer_id or now < period_boundary(account, now) + CLOSE_AFTER:
        return None
    through = _closed_through(organization)
    if through is not None and through >= ceil_hour(period_boundary(account, now)):
        return None  # closed already: the usual case, decided without the lock
    with transaction.atomic():
        account = _locked_account(organization)
        if not account.stripe_customer_id:
            return None
        boundary = period_boundary(account, now)
        if now < boundary + CLOSE_AFTER:
            return None
        end = ceil_hour(boundary)
        reports = MeterReport.objects.filter(organization=organization)
        first = reports.order_by("hour").values_list("hour", flat=True).first()
        if first is None:
            return None  # never reported: nothing billed through Stripe
        # The first close starts where the period of the first hour ever reported began.
        start = period_boundary(account, first)
        through = _closed_through(organization)
        if through is not None:
            start = max(start, through)
        if start >= end:
            return None
        in_period = reports.filter(hour__gte=start, hour__lt=end)
        period = BilledPeriod.objects.create(
            organization=organization,
            source=BilledPeriod.Source.STRIPE,
            period_start=start,
            period_end=end,
            plan=account.plan,
            calls=in_period.aggregate(calls=Sum("delivered_calls"))["calls"] or 0,
            closed_at=now,
        )
        confirmed = dict(in_period.values_list("hour", "delivered_revision"))
        for carry in LateUsage.objects.filter(
            organization=organization, voided_at=None, meter_hour__gte=start, meter_hour__lt=end
        ).select_related("billed_period"):
            assert carry.meter_hour is not None
            revision = confirmed.get(carry.meter_hour)
            if carry.meter_revision is not None and revision is not None and carry.meter_revision <= revision:
                continue
            carry.voided_at = now
            carry.save(update_fields=["voided_at"])
            record_audit(
                SYSTEM,
                organization,
                "billing.late_usage_voided",
                carry,
                after={"calls": carry.calls, "reason": f"not at Stripe before {period.label} closed"},
            )
    return period


def organizations_with_late_usage(now: datetime | None = None) -> list[int]:
    """The ids of organizations with a closed period of the last LATE_USAGE_WINDOW whose calls
    now exceed what it was billed and carried: those `carry_late_usage` has something to carry
    for. Two queries, whatever the number of organizations."""
    now = now or clock.now()
    periods = list(
        BilledPeriod.objects.filter(period_end__gt=now - LATE_USAGE_WINDOW, organization__is_template=False)
        .exclude(source=BilledPeriod.Source.STRIPE, calls=0)
        .annotate(carried=Coalesce(Sum("late_usage__calls", filter=Q(late_usage__voided_at=None)), 0))
        .values_list(
            "organization_id", "organization__schema_name", "period_start", "period_end", "calls", "carried"
        )
    )
    counted = calls_in_periods(
        [(schema, BillingPeriod(start, end)) for _, schema, start, end, _, _ in periods]
    )
    return sorted({row[0] for row, calls in zip(periods, counted, strict=True) if calls > row[4] + row[5]})


def _plan_of(period: BilledPeriod, account: BillingAccount) -> Plan:
    return all_plans().get(period.plan) or get_plan(account.plan)


def carry_late_usage(organization: Organization, now: datetime | None = None) -> list[LateUsage]:
    """Carry each closed period's late usage (the rollups now, less what was billed and what was
    carried) into the open bill, once. With Stripe, only for an organization with a metered
    subscription: there is nothing else to bill it on."""
    now = now or clock.now()
    to_stripe = stripe_api.stripe_connected()
    carried: list[LateUsage] = []
    with transaction.atomic():
        account = _locked_account(organization)
        meter_hour = None
        if to_stripe:
            if not account.stripe_customer_id or not get_plan(account.plan).metered:
                return []
            meter_hour = max(floor_hour(now), ceil_hour(period_boundary(account, now)))
        periods = BilledPeriod.objects.filter(
            organization=organization, period_end__gt=now - LATE_USAGE_WINDOW
        ).order_by("period_start")
        for period in periods:
            if period.source == BilledPeriod.Source.STRIPE and not period.calls:
                continue  # nothing was metered in it: not billed through Stripe then
            counted = billable_calls(organization, BillingPeriod(period.period_start, period.period_end))
            earlier = list(period.late_usage.all())
            billed = period.calls + sum(c.calls for c in earlier if c.voided_at is None)
            late = counted - billed
            if late <= 0:
                continue
            plan = _plan_of(period, account)
            carry = LateUsage.objects.create(
                organization=organization,
                billed_period=period,
                sequence=len(earlier) + 1,
                calls=late,
                currency=plan.currency,
                amount_minor=None
                if to_stripe
                else period_cost_minor(plan, billed + late) - period_cost_minor(plan, billed),
                carried_at=now,
                meter_hour=meter_hour,
            )
            record_audit(
                SYSTEM,
                organization,
                "billing.late_usage_carried",
                carry,
                after={
                    "from_period": period.label,
                    "calls": late,
                    "amount_minor": carry.amount_minor,
                    "into": "stripe meter" if to_stripe else "next local invoice",
                },
            )
            carried.append(carry)
    return carried


# --- what bills and documents read ----------------------------------------------------------


def line(carry: LateUsage) -> dict[str, Any]:
    return {
        "description": carry.description,
        "quantity": carry.calls,
        "amount_minor": carry.amount_minor,
        "kind": "late_usage",
        "from_period": carry.billed_period.label,
    }


def pending_local_carries(organization: Organization, before: datetime) -> list[LateUsage]:
    """Local carries made before `before` and on no invoice yet, locked for the invoice to take."""
    return list(
        LateUsage.objects.select_for_update(of=("self",))
        .select_related("billed_period")
        .filter(
            organization=organization,
            invoice=None,
            voided_at=None,
            amount_minor__isnull=False,
            carried_at__lt=before,
        )
        .order_by("carried_at", "id")
    )


def _stripe_carries(organization_id: int, start: datetime, end: datetime) -> QuerySet[LateUsage]:
    """The carries riding in the meter events of hours in [start, end)."""
    return LateUsage.objects.filter(
        organization_id=organization_id, voided_at=None, meter_hour__gte=start, meter_hour__lt=end
    ).order_by("id")


def carries_by_hour(
    organization: Organization, start: datetime, end: datetime
) -> dict[datetime, list[LateUsage]]:
    """Stripe carries riding in the meter events of hours in [start, end)."""
    hours: dict[datetime, list[LateUsage]] = defaultdict(list)
    for carry in _stripe_carries(organization.id, start, end):
        assert carry.meter_hour is not None
        hours[carry.meter_hour].append(carry)
    return hours


def invoice_lines(invoice: Invoice) -> list[dict[str, Any]]:
    """The late usage an invoice bills: a local invoice's lines; for a Stripe invoice, the carries
    in the meter events of its period's hours (Stripe shows them only inside the metered total)."""
    if invoice.source == Invoice.Source.LOCAL:
        return [dict(entry) for entry in invoice.lines if entry.get("kind") == "late_usage"]
    carries = _stripe_carries(invoice.organization_id, invoice.period_start, invoice.period_end)
    return [line(carry) for carry in carries.select_related("billed_period")]


def open_lines(organization: Organization, account: BillingAccount, now: datetime) -> list[dict[str, Any]]:
    """The late usage carried into the open bill and not on an invoice yet."""
    carries = LateUsage.objects.filter(organization=organization, voided_at=None).select_related(
        "billed_period"
    )
    if stripe_api.stripe_connected():
        carries = carries.filter(meter_hour__gte=ceil_hour(period_boundary(account, now)))
    else:
        carries = carries.filter(invoice=None, amount_minor__isnull=False)
    return [line(carry) for carry in carries]


def late_usage_calls() -> float:
    """Every late call carried so far, all organizations (the `saas_billing_late_usage_calls`
    gauge): it only grows; a voided carry is counted again only when carried again."""
    return float(LateUsage.objects.filter(voided_at=None).aggregate(calls=Sum("calls"))["calls"] or 0)
