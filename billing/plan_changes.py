"""Which plan bills a period when the plan changed in it (billing run locally).

A period is billed at the plan held at its end, or at a plan left during it after its calls had
passed the new plan's allowance, whichever costs more for the period's calls: a downgrade cannot
unbill calls already made, and a change made by mistake and changed back before the calls
outgrew the plan costs nothing. Each change is recorded (`PlanChange`) with the period's calls
at that moment."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from saas.metering.services import BillingPeriod
from tenants.models import Organization

from .models import BillingAccount, PlanChange
from .plans import Plan, all_plans, get_plan
from .pricing import period_cost_minor


def record(
    organization: Organization, before: Plan, after: Plan, period: BillingPeriod, calls: int, at: datetime
) -> PlanChange:
    return PlanChange.objects.create(
        organization=organization,
        changed_at=at,
        from_plan=before.slug,
        to_plan=after.slug,
        period_start=period.start,
        calls=calls,
    )


def changes_in(organization: Organization, start: datetime, end: datetime) -> list[PlanChange]:
    return list(
        PlanChange.objects.filter(organization=organization, changed_at__gte=start, changed_at__lt=end)
    )


def plan_held_at(organization: Organization, account: BillingAccount, moment: datetime) -> Plan:
    """The plan the organization held just before `moment` (a period's end: the plan it ended on)."""
    last = PlanChange.objects.filter(organization=organization, changed_at__lt=moment).last()
    if last is not None and last.to_plan in all_plans():
        return get_plan(last.to_plan)
    following = PlanChange.objects.filter(organization=organization, changed_at__gte=moment).first()
    if following is not None and following.from_plan in all_plans():
        return get_plan(following.from_plan)
    return get_plan(account.plan)


def billing_plans(end_plan: Plan, changes: Iterable[PlanChange]) -> list[Plan]:
    """The plans that may bill a period: the one held at its end first, then each plan left in it
    after the period's calls had passed the new plan's allowance."""
    plans = [end_plan]
    for change in changes:
        left, new = all_plans().get(change.from_plan), all_plans().get(change.to_plan)
        if left is not None and new is not None and change.calls > new.included_calls and left not in plans:
            plans.append(left)
    return plans


def dearest(plans: Sequence[Plan], calls: int) -> tuple[Plan, int]:
    """The plan of `plans` that costs most for `calls`, and that cost; on a tie, the first."""
    costs = [(plan, period_cost_minor(plan, calls)) for plan in plans]
    return max(costs, key=lambda entry: entry[1])
