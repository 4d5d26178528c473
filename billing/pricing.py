"""What calls cost on a plan, in minor units (cents), with Decimal arithmetic: never a float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from .plans import Plan

MILLION = Decimal(1_000_000)


def usage_charge_minor(plan: Plan, calls: int) -> Decimal:
    """The charge for `calls` in one period beyond the base fee, unrounded: each tier prices the
    calls that fall in it, between the allowance (or the previous tier's end) and its `up_to`."""
    charge = Decimal(0)
    low = plan.included_calls
    for tier in plan.tiers:
        high = calls if tier.up_to is None else min(calls, tier.up_to)
        if high > low:
            charge += Decimal(high - low) * tier.per_million_minor / MILLION
        if tier.up_to is not None:
            low = max(low, tier.up_to)
    return charge


def period_cost_minor(plan: Plan, calls: int) -> int:
    """Base fee plus the usage charge, rounded half up to whole minor units once, at the end."""
    if plan.custom:
        return 0
    total = Decimal(plan.base_fee_minor) + usage_charge_minor(plan, calls)
    return int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))
