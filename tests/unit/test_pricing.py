"""The cost preview is the plan's tier arithmetic, by hand: base fee, allowance, then $2.00 per
million calls up to 100 million and $1.00 per million beyond (Pro), in cents, rounded once."""

from decimal import Decimal

import pytest

from billing.plans import Plan, Tier
from billing.pricing import period_cost_minor

PRO = Plan(
    slug="pro",
    name="Pro",
    currency="usd",
    base_fee_minor=4900,
    included_calls=5_000_000,
    hard_cap=False,
    tiers=(Tier(100_000_000, Decimal(200)), Tier(None, Decimal(100))),
)
FREE = Plan("free", "Free", "usd", 0, 1_000_000, True, ())


@pytest.mark.parametrize(
    ("calls", "cents"),
    [
        (0, 4900),
        (5_000_000, 4900),  # the allowance: base fee only
        (5_000_001, 4900),  # one call beyond: 0.0002 cent, rounds away
        (5_002_500, 4900 + 1),  # 2,500 calls at $2/M = 0.5 cent: half up
        (6_000_000, 4900 + 200),  # one million beyond: $2.00
        (100_000_000, 4900 + 95 * 200),  # the tier's edge: 95 million at $2
        (100_000_001, 4900 + 95 * 200),
        (101_000_000, 4900 + 95 * 200 + 100),  # one million in the last tier: $1.00
        (1_000_000_000, 4900 + 95 * 200 + 900 * 100),
    ],
)
def test_pro_costs_follow_the_tiers(calls, cents):
    assert period_cost_minor(PRO, calls) == cents


def test_the_free_plan_costs_nothing_whatever_the_calls():
    assert [period_cost_minor(FREE, calls) for calls in (0, 1_000_000, 5_000_000)] == [0, 0, 0]


def test_the_default_plans_are_configuration():
    from billing.plans import all_plans

    plans = all_plans()
    assert set(plans) == {"free", "pro", "enterprise"}
    assert plans["pro"] == PRO
    assert plans["free"].hard_cap and plans["free"].included_calls == 1_000_000
    assert plans["enterprise"].custom
