"""Billing: plans, the current period's usage and cost, quotas, invoices, and Stripe.

- `billing_summary`: the plan, this period's dates and calls (per day too) against the allowance,
  the cost so far and the projected cost for the period, computed locally from the rollups and
  the plan's tiers, and what changing to each other plan would mean.
- `change_plan` up or down (billing run locally; see `plan_changes` for the plan that bills a
  period changed in) or `checkout_url` / `portal_url` (Stripe connected).
- `evaluate_quota`: announces 80 % and 100 % of the allowance once per period, and blocks a
  hard-capped plan past its allowance through the next snapshot (lifted the same way).
- `issue_local_invoice`: the invoice the control plane makes for a past period without Stripe,
  with the late usage carried since the last one (see `late_usage`).
- `report_usage_to_stripe`: each hour's calls (and late usage carried into it) to Stripe's meter,
  exactly once per revision.
- `handle_stripe_event`: a verified webhook event, once, whatever the order."""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django_tenants.utils import schema_context

from core import clock
from core.errors import Conflict, InvalidInput
from saas.gateways.publishing import publish_to_every_cluster
from saas.metering.services import (
    BillingPeriod,
    billable_calls,
    billable_calls_by,
    calls_in_periods,
)
from tenants.audit import Actor, record_audit
from tenants.models import Membership, Organization
from tenants.roles import Role

from . import late_usage, plan_changes, stripe_api
from .models import (
    BilledPeriod,
    BillingAccount,
    Invoice,
    LateUsage,
    MeterReport,
    PlanChange,
    QuotaNotice,
    StripeEvent,
)
from .plans import FREE, Plan, all_plans, get_plan
from .pricing import period_cost_minor

THRESHOLDS = (80, 100)
logger = logging.getLogger("billing")


def account_for(organization: Organization) -> BillingAccount:
    account, _ = BillingAccount.objects.get_or_create(organization=organization)
    return account


def current_period(account: BillingAccount, now: datetime) -> BillingPeriod:
    """The Stripe subscription's period when it holds `now`, else the UTC calendar month."""
    if account.period_start and account.period_end and account.period_start <= now < account.period_end:
        return BillingPeriod(account.period_start, account.period_end)
    return BillingPeriod.containing(now)


@dataclass(frozen=True)
class PeriodUsage:
    period: BillingPeriod
    calls: int
    cost_minor: int
    projected_calls: int
    projected_cost_minor: int
    elapsed_share: float  # of the period, between 0 and 1: what the projection extrapolates from
    linear_projection: int  # the calls at this rate to the period's end, before any hard cap


def period_usage(
    organization: Organization, account: BillingAccount, now: datetime, *, calls: int | None = None
) -> PeriodUsage:
    """This period's calls (`calls` when counted already), and the calls projected to its end:
    linear, the calls so far over the elapsed share of the period (at least an hour, so hour one
    makes no wild projection); a hard-capped plan's stop at its allowance."""
    period = current_period(account, now)
    plan = get_plan(account.plan)
    if calls is None:
        calls = billable_calls(organization, period)
    length = (period.end - period.start).total_seconds()
    elapsed = min(max((now - period.start).total_seconds(), 3600.0), length)
    linear = calls if elapsed >= length else int(calls * length / elapsed)
    projected = capped_projection(plan, calls, linear)
    return PeriodUsage(
        period,
        calls,
        period_cost_minor(plan, calls),
        projected,
        period_cost_minor(plan, projected),
        max(0.0, min((now - period.start).total_seconds() / length, 1.0)),
        linear,
    )


def capped_projection(plan: Plan, calls: int, linear: int) -> int:
    """A hard-capped plan refuses calls past its allowance: they are not projected."""
    return min(linear, max(calls, plan.included_calls)) if plan.hard_cap else linear


def plan_document(plan: Plan) -> dict[str, Any]:
    return {
        "slug": plan.slug,
        "name": plan.name,
        "currency": plan.currency,
        "base_fee_minor": plan.base_fee_minor,
        "included_calls": plan.included_calls,
        "hard_cap": plan.hard_cap,
        "custom": plan.custom,
        "contact": plan.contact,
        "tiers": [{"up_to": t.up_to, "per_million_minor": str(t.per_million_minor)} for t in plan.tiers],
    }


def is_upgrade(before: Plan, after: Plan) -> bool:
    return (after.base_fee_minor, after.included_calls) > (before.base_fee_minor, before.included_calls)


@dataclass(frozen=True)
class _Bill:
    plan: Plan  # the plan the period is billed at so far
    cost_minor: int
    projected_cost_minor: int


def _bill(plans: list[Plan], usage: PeriodUsage, late: list[dict[str, Any]], stripe: bool) -> _Bill:
    """The period's cost so far and projected at the dearest of `plans` (the first: the plan it
    ends on), with the late usage of closed periods carried into it: lines of the next local
    invoice, priced already; with Stripe, calls its meter adds to this period's."""
    late_calls = sum(entry["quantity"] for entry in late) if stripe else 0
    late_minor = 0 if stripe else sum(entry["amount_minor"] or 0 for entry in late)
    plan, cost = plan_changes.dearest(plans, usage.calls + late_calls)
    projected_calls = capped_projection(plans[0], usage.calls, usage.linear_projection) + late_calls
    _, projected = plan_changes.dearest(plans, projected_calls)
    return _Bill(plan, cost + late_minor, projected + late_minor)


def _usage_by_day(days: dict[datetime, int], period: BillingPeriod, now: datetime) -> list[dict[str, Any]]:
    """Every UTC day the period touches, with its calls; null for a day not begun yet."""
    day = period.start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    series = []
    while day < period.end:
        series.append({"day": day.date(), "calls": days.get(day, 0) if day <= now else None})
        day += timedelta(days=1)
    return series


def billing_summary(
    organization: Organization, now: datetime | None = None, *, usage_by_day: bool = False
) -> dict[str, Any]:
    """The billing page: the plan, this period (its dates, its calls per day with
    `usage_by_day`), the allowance used, the cost so far and projected, the quota, and what each
    other self-serve plan would change (its price, this period's cost, refused calls)."""
    now = now or clock.now()
    account = account_for(organization)
    plan = get_plan(account.plan)
    period = current_period(account, now)
    days = billable_calls_by("day", organization, period.start, period.end) if usage_by_day else None
    usage = period_usage(organization, account, now, calls=None if days is None else sum(days.values()))
    stripe = stripe_api.stripe_connected()
    late = late_usage.open_lines(organization, account, now)
    # Billing run locally: a plan left in this period after its calls passed the new allowance
    # may still bill it (plan_changes); Stripe prorates plan changes itself.
    changes = [] if stripe else plan_changes.changes_in(organization, period.start, period.end)
    bill = _bill(plan_changes.billing_plans(plan, changes), usage, late, stripe)
    return {
        "plan": plan_document(plan),
        "stripe_connected": stripe,
        "subscription_status": account.subscription_status or None,
        "period": {
            "start": period.start,
            "end": period.end,
            "elapsed_percent": round(100 * usage.elapsed_share, 2),
        },
        "calls": usage.calls,
        "usage_by_day": None if days is None else _usage_by_day(days, period, now),
        "included_calls": plan.included_calls,
        "allowance_used_percent": round(100 * usage.calls / plan.included_calls, 2)
        if plan.included_calls
        else None,
        "billed_plan": bill.plan.slug,
        "cost_so_far_minor": bill.cost_minor,
        "projected_calls": usage.projected_calls,
        "projected_cost_minor": bill.projected_cost_minor,
        "late_usage": late,
        "currency": plan.currency,
        "quota": {"exceeded": account.quota_exceeded, "resets_at": account.quota_resets_at},
        "plan_changes": [] if plan.custom else _plan_change_options(plan, changes, usage, late, stripe, now),
    }


def _plan_change_options(
    plan: Plan,
    changes: list[PlanChange],
    usage: PeriodUsage,
    late: list[dict[str, Any]],
    stripe: bool,
    now: datetime,
) -> list[dict[str, Any]]:
    """What changing to each other self-serve plan now would mean for this period."""
    options = []
    for other in all_plans().values():
        if other.custom or other.slug == plan.slug:
            continue
        change = PlanChange(from_plan=plan.slug, to_plan=other.slug, calls=usage.calls, changed_at=now)
        bill = _bill(plan_changes.billing_plans(other, [*changes, change]), usage, late, stripe)
        options.append(
            {
                "plan": plan_document(other),
                "change": "upgrade" if is_upgrade(plan, other) else "downgrade",
                "billed_plan": bill.plan.slug,
                "cost_so_far_minor": bill.cost_minor,
                "projected_cost_minor": bill.projected_cost_minor,
                "calls_refused": other.hard_cap and usage.calls >= other.included_calls,
            }
        )
    return options


def _self_serve_plan(slug: str) -> Plan:
    plans = all_plans()
    if slug not in plans:
        raise InvalidInput.field("plan", f"One of: {', '.join(plans)}.")
    plan = plans[slug]
    if plan.custom:
        raise InvalidInput.field("plan", f"The {plan.name} plan is sold by contract: contact {plan.contact}.")
    return plan


def change_plan(
    actor: Actor, organization: Organization, slug: str, now: datetime | None = None
) -> BillingAccount:
    """Billing run locally (no Stripe): the plan changes now, up or down, and can be changed back.
    The new allowance applies at once (a hard cap already passed refuses calls until the period
    ends, a quota it lifts is lifted); the period is billed at the plan it ends on, or at the plan
    left if its calls had passed the new allowance and that costs more (`plan_changes`)."""
    if stripe_api.stripe_connected():
        raise Conflict("Stripe is connected: change plans through checkout or the billing portal.")
    plan = _self_serve_plan(slug)
    now = now or clock.now()
    with transaction.atomic():
        account = BillingAccount.objects.select_for_update().get(pk=account_for(organization).pk)
        before = get_plan(account.plan)
        if before.custom:
            raise InvalidInput.field(
                "plan", f"The {before.name} plan is a contract: contact {before.contact} to change it."
            )
        if before.slug == plan.slug:
            raise InvalidInput.field("plan", f"The organization is on the {plan.name} plan already.")
        usage = period_usage(organization, account, now)
        plan_changes.record(organization, before, plan, usage.period, usage.calls, now)
        account.plan = plan.slug
        account.save(update_fields=["plan", "updated_at"])
        record_audit(
            actor,
            organization,
            "billing.plan_changed",
            account,
            before={"plan": before.slug},
            after={"plan": plan.slug, "period_calls": usage.calls},
        )
    evaluate_quota(organization)
    return account


def _ensure_customer(organization: Organization, account: BillingAccount) -> str:
    """Customers are created in Stripe lazily, the first time one is needed."""
    if not account.stripe_customer_id:
        owner = (
            Membership.objects.filter(organization=organization, role=Role.OWNER)
            .select_related("user")
            .first()
        )
        account.stripe_customer_id = stripe_api.create_customer(
            organization.id, organization.name, owner.user.email if owner else ""
        )
        account.save(update_fields=["stripe_customer_id", "updated_at"])
    return account.stripe_customer_id


def checkout_url(actor: Actor, organization: Organization, slug: str, return_url: str) -> str:
    if not stripe_api.stripe_connected():
        raise Conflict("Stripe is not connected: billing runs locally; change the plan directly.")
    plan = _self_serve_plan(slug)
    if not plan.base_fee_minor and not plan.metered:
        raise InvalidInput.field("plan", f"The {plan.name} plan needs no checkout.")
    account = account_for(organization)
    customer = _ensure_customer(organization, account)
    url = stripe_api.checkout_url(
        customer, plan, f"{return_url}?checkout=done", f"{return_url}?checkout=cancelled"
    )
    record_audit(actor, organization, "billing.checkout_started", account, after={"plan": plan.slug})
    return url


def portal_url(actor: Actor, organization: Organization, return_url: str) -> str:
    if not stripe_api.stripe_connected():
        raise Conflict("Stripe is not connected: billing runs locally.")
    account = account_for(organization)
    url = stripe_api.portal_url(_ensure_customer(organization, account), return_url)
    record_audit(actor, organization, "billing.portal_opened", account)
    return url


# --- quotas ---------------------------------------------------------------------------------


def evaluate_quota(organization: Organization, now: datetime | None = None) -> bool:
    """Announce thresholds crossed (once per period each) and block or unblock a hard-capped
    plan; True when the block changed (the organization's clusters got a new snapshot)."""
    now = now or clock.now()
    return _apply_quota(organization, account_for(organization), now, calls=None, announced=None)


def check_every_quota(now: datetime | None = None) -> int:
    """`evaluate_quota` for every organization on a plan with an allowance, in a few queries
    whatever their number (their periods' calls, the thresholds announced); only those crossing a
    threshold or changing their block write anything. How many blocks changed."""
    now = now or clock.now()
    missing = Organization.objects.filter(is_template=False, billing__isnull=True).values_list(
        "id", flat=True
    )
    BillingAccount.objects.bulk_create(
        [BillingAccount(organization_id=organization_id) for organization_id in missing],
        ignore_conflicts=True,
    )
    with_allowance = [slug for slug, plan in all_plans().items() if not plan.custom and plan.included_calls]
    accounts = list(
        BillingAccount.objects.filter(organization__is_template=False, plan__in=with_allowance)
        .select_related("organization")
        .order_by("organization_id")
    )
    if not accounts:
        return 0
    periods = [current_period(account, now) for account in accounts]
    calls = calls_in_periods(
        [
            (account.organization.schema_name, period)
            for account, period in zip(accounts, periods, strict=True)
        ]
    )
    announced: dict[tuple[int, datetime], set[int]] = defaultdict(set)
    for organization_id, period_start, threshold in QuotaNotice.objects.filter(
        period_start__gte=min(period.start for period in periods)
    ).values_list("organization_id", "period_start", "threshold"):
        announced[(organization_id, period_start)].add(threshold)
    changed = 0
    for account, period, period_calls in zip(accounts, periods, calls, strict=True):
        organization = account.organization
        try:
            changed += _apply_quota(
                organization,
                account,
                now,
                calls=period_calls,
                announced=announced[(organization.id, period.start)],
            )
        except Exception:  # one organization's failure must not hold the others' quotas
            logger.exception("quota check failed for organization %s", organization.id)
    return changed


def _apply_quota(
    organization: Organization,
    account: BillingAccount,
    now: datetime,
    *,
    calls: int | None,
    announced: set[int] | None,
) -> bool:
    """The quota of one organization, from its period's calls when counted already and the
    thresholds announced in the period when known (each is announced once either way)."""
    plan = get_plan(account.plan)
    if plan.custom or not plan.included_calls:
        return False
    usage = period_usage(organization, account, now, calls=calls)
    for threshold in THRESHOLDS:
        if announced is not None and threshold in announced:
            continue
        if usage.calls * 100 >= plan.included_calls * threshold:
            try:
                with transaction.atomic():
                    QuotaNotice.objects.create(
                        organization=organization, period_start=usage.period.start, threshold=threshold
                    )
            except IntegrityError:
                continue  # announced already this period
            _announce_on_commit(organization.id, threshold, usage.period.start)
    exceeded = plan.hard_cap and usage.calls >= plan.included_calls
    resets_at = usage.period.end if exceeded else None
    if exceeded == account.quota_exceeded and resets_at == account.quota_resets_at:
        return False
    with transaction.atomic():
        BillingAccount.objects.filter(pk=account.pk).update(
            quota_exceeded=exceeded, quota_resets_at=resets_at
        )
        with schema_context(organization.schema_name):
            reason = "allowance used up: calls refused" if exceeded else "allowance available again"
            publish_to_every_cluster(author="billing", reason=reason, sections=["quota"])
    return True


def _announce_on_commit(organization_id: int, threshold: int, period_start: datetime) -> None:
    from .tasks import send_quota_email

    transaction.on_commit(
        lambda: send_quota_email.delay(organization_id, threshold, period_start.isoformat())
    )


def quota_email_recipients(organization: Organization) -> list[str]:
    return list(
        Membership.objects.filter(organization=organization, role__in=[Role.OWNER, Role.BILLING])
        .order_by("id")
        .values_list("user__email", flat=True)
    )


# --- invoices -------------------------------------------------------------------------------


def organizations_to_invoice(period: BillingPeriod) -> list[Organization]:
    """The organizations without a local invoice for `period` yet, of those that existed in it:
    one that signed up after it ended owes nothing for it (a paid plan's base fee, else)."""
    invoiced = Invoice.objects.filter(source=Invoice.Source.LOCAL, period_start=period.start)
    return list(
        Organization.objects.filter(is_template=False, created_at__lt=period.end)
        .exclude(id__in=invoiced.values("organization_id"))
        .order_by("id")
    )


def issue_local_invoice(organization: Organization, period: BillingPeriod) -> Invoice:
    """The control plane's invoice for a past period (billing run locally), from the rollups,
    with the late usage carried since the last invoice as lines of its own; issuing it again
    returns the same invoice. The period is closed with it: calls its rollups gain afterwards are
    late usage, carried into a later invoice."""
    existing = Invoice.objects.filter(
        organization=organization, source=Invoice.Source.LOCAL, period_start=period.start
    ).first()
    if existing is not None:
        return existing
    account = account_for(organization)
    calls = billable_calls(organization, period)
    ended_on = plan_changes.plan_held_at(organization, account, period.end)
    plans = plan_changes.billing_plans(
        ended_on, plan_changes.changes_in(organization, period.start, period.end)
    )
    plan, own_total = plan_changes.dearest(plans, calls)
    usage_minor = own_total - plan.base_fee_minor
    billed_as = f"{plan.name} plan, {period.label}"
    if plan != ended_on:
        billed_as += f" (calls past the {ended_on.name} allowance)"
    lines: list[dict[str, Any]] = [{"description": billed_as, "amount_minor": plan.base_fee_minor}]
    lines.append(
        {
            "description": f"{calls:,} calls ({plan.included_calls:,} included)",
            "quantity": calls,
            "amount_minor": usage_minor,
        }
    )
    try:
        with transaction.atomic():
            carries = late_usage.pending_local_carries(organization, period.end)
            lines += [late_usage.line(carry) for carry in carries]
            total = own_total + sum(carry.amount_minor or 0 for carry in carries)
            invoice = Invoice.objects.create(
                organization=organization,
                source=Invoice.Source.LOCAL,
                number=f"L-{organization.id:05d}-{period.start:%Y%m}",
                period_start=period.start,
                period_end=period.end,
                currency=plan.currency,
                amount_due_minor=total,
                status="open" if total else "paid",
                plan=plan.slug,
                calls=calls,
                lines=lines,
            )
            LateUsage.objects.filter(pk__in=[carry.pk for carry in carries]).update(invoice=invoice)
            BilledPeriod.objects.get_or_create(
                organization=organization,
                period_start=period.start,
                defaults={
                    "source": BilledPeriod.Source.LOCAL,
                    "period_end": period.end,
                    "plan": plan.slug,
                    "calls": calls,
                    "closed_at": clock.now(),
                },
            )
            return invoice
    except IntegrityError:  # issued by a concurrent run
        return Invoice.objects.get(
            organization=organization, source=Invoice.Source.LOCAL, period_start=period.start
        )


# --- Stripe: usage to the meter -------------------------------------------------------------

LOOKBACK = timedelta(days=34)  # Stripe takes meter events up to 35 days old


def meter_identifier(organization: Organization, hour: datetime, revision: int) -> str:
    """Deterministic: organization, meter, hour (and the revision of a corrected hour)."""
    base = f"org{organization.id}-api_calls-{hour:%Y%m%d%H}"
    return base if revision == 0 else f"{base}-r{revision}"


def report_usage_to_stripe(organization: Organization, now: datetime | None = None) -> int:
    """Send each completed hour's calls (within Stripe's 35 days, of a period Stripe still bills)
    whose total Stripe does not have yet: a new hour, or one that grew since (a gateway reporting
    late), as a new revision that replaces the hour's value (the meter is pre-aggregated by hour).
    An hour's value is its own calls plus the late usage carried into it. Each report is stored
    before it is sent, so a run that died half way sends the same events again, and Stripe's
    refusal of an identifier it has counts as delivered. Returns the events sent."""
    account = account_for(organization)
    if not account.stripe_customer_id or not get_plan(account.plan).metered:
        return 0
    now = now or clock.now()
    last_hour = late_usage.floor_hour(now)
    since = max(last_hour - LOOKBACK, late_usage.stripe_sendable_from(organization, account, now))
    totals = billable_calls_by("hour", organization, since, last_hour)
    carries = late_usage.carries_by_hour(organization, since, last_hour)
    reports = {r.hour: r for r in MeterReport.objects.filter(organization=organization, hour__gte=since)}
    for hour in sorted(totals.keys() | carries.keys()):
        calls, late = totals.get(hour, 0), sum(carry.calls for carry in carries.get(hour, []))
        report = reports.get(hour)
        with transaction.atomic():
            if report is None:
                report = reports[hour] = MeterReport.objects.create(
                    organization=organization,
                    hour=hour,
                    calls=calls,
                    late_calls=late,
                    identifier=meter_identifier(organization, hour, 0),
                )
            elif (report.calls, report.late_calls) != (calls, late) and report.sent_at is not None:
                report.calls, report.late_calls, report.revision = calls, late, report.revision + 1
                report.identifier = meter_identifier(organization, hour, report.revision)
                report.sent_at = None
                report.save()
            else:
                continue  # unchanged, or its stored event not delivered yet: sent as it is
            # The carries this revision's value holds: Stripe has them once it is delivered.
            LateUsage.objects.filter(
                pk__in=[carry.pk for carry in carries.get(hour, []) if carry.meter_revision is None]
            ).update(meter_revision=report.revision)
    sent = 0
    for report in sorted((r for r in reports.values() if r.sent_at is None), key=lambda r: r.hour):
        with contextlib.suppress(stripe_api.DuplicateMeterEvent):  # Stripe has it: delivered
            stripe_api.send_meter_event(
                account.stripe_customer_id, report.value, report.identifier, report.hour
            )
        report.sent_at = clock.now()
        report.delivered_calls, report.delivered_revision = report.calls, report.revision
        report.save(update_fields=["sent_at", "delivered_calls", "delivered_revision"])
        sent += 1
    return sent


# --- Stripe: webhooks -----------------------------------------------------------------------


def _moment(timestamp: int | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, tz=UTC) if timestamp else None


def handle_stripe_event(event: dict[str, Any]) -> bool:
    """Apply a verified event once; False when it was handled before. Safe out of order: each
    object's state is applied only when newer than what is stored."""
    with transaction.atomic():
        _, created = StripeEvent.objects.get_or_create(event_id=event["id"], defaults={"type": event["type"]})
        if not created:
            return False
        kind, obj = event["type"], event["data"]["object"]
        as_of = _moment(event.get("created")) or clock.now()
        if kind.startswith("customer.subscription."):
            _apply_subscription(obj, as_of, deleted=kind == "customer.subscription.deleted")
        elif kind.startswith("invoice."):
            _apply_invoice(obj, as_of)
    return True


def _plan_of(subscription: dict[str, Any]) -> str:
    slug = (subscription.get("metadata") or {}).get("plan")
    if slug in all_plans():
        return str(slug)
    for item in (subscription.get("items") or {}).get("data", []):
        slug = ((item.get("price") or {}).get("metadata") or {}).get("plan")
        if slug in all_plans():
            return str(slug)
    return FREE


def _apply_subscription(subscription: dict[str, Any], as_of: datetime, *, deleted: bool) -> None:
    account = (
        BillingAccount.objects.select_for_update().filter(stripe_customer_id=subscription["customer"]).first()
    )
    if account is None or (account.subscription_as_of and account.subscription_as_of > as_of):
        return  # not ours, or older than what we know
    items = (subscription.get("items") or {}).get("data") or [{}]
    start = subscription.get("current_period_start") or items[0].get("current_period_start")
    end = subscription.get("current_period_end") or items[0].get("current_period_end")
    ended = deleted or subscription.get("status") in ("canceled", "incomplete_expired")
    account.stripe_subscription_id = "" if ended else subscription["id"]
    account.subscription_status = subscription.get("status", "")
    account.plan = FREE if ended else _plan_of(subscription)
    account.period_start, account.period_end = (None, None) if ended else (_moment(start), _moment(end))
    account.subscription_as_of = as_of
    account.save()
    transaction.on_commit(lambda: evaluate_quota(account.organization))


def _apply_invoice(invoice: dict[str, Any], as_of: datetime) -> None:
    account = BillingAccount.objects.filter(stripe_customer_id=invoice.get("customer")).first()
    if account is None:
        return
    current = Invoice.objects.select_for_update().filter(stripe_invoice_id=invoice["id"]).first()
    if current is not None and current.stripe_as_of and current.stripe_as_of > as_of:
        return  # an older state of the invoice, arrived late
    fields = {
        "organization": account.organization,
        "source": Invoice.Source.STRIPE,
        "number": invoice.get("number") or invoice["id"],
        "period_start": _moment(invoice.get("period_start")) or as_of,
        "period_end": _moment(invoice.get("period_end")) or as_of,
        "currency": invoice.get("currency") or "usd",
        "amount_due_minor": int(invoice.get("amount_due") or 0),
        "status": invoice.get("status") or "draft",
        "hosted_invoice_url": invoice.get("hosted_invoice_url") or "",
        "invoice_pdf_url": invoice.get("invoice_pdf") or "",
        "plan": account.plan,
        "stripe_as_of": as_of,
    }
    Invoice.objects.update_or_create(stripe_invoice_id=invoice["id"], defaults=fields)
