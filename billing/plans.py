"""The plans on offer: configuration, not code. `BILLING_PLANS_FILE` names a JSON file like
`plans.json` beside this module (the defaults).

A plan has a monthly base fee and an allowance of included calls; calls beyond it are priced in
graduated tiers, each up to a total number of calls in the period (`up_to`, null: no end), at a
price per million calls in minor units (cents). A hard-capped plan refuses calls past its
allowance instead of charging them. A custom plan (Enterprise) is sold by contract."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

from django.conf import settings

DEFAULT_PLANS_FILE = Path(__file__).with_name("plans.json")


@dataclass(frozen=True)
class Tier:
    up_to: int | None  # calls in the period, included ones counted; None: no end
    per_million_minor: Decimal


@dataclass(frozen=True)
class Plan:
    slug: str
    name: str
    currency: str
    base_fee_minor: int
    included_calls: int
    hard_cap: bool
    tiers: tuple[Tier, ...]
    custom: bool = False
    contact: str = ""

    @property
    def metered(self) -> bool:
        """Calls beyond the allowance are charged (not refused, not by contract)."""
        return not self.custom and not self.hard_cap and bool(self.tiers)


def _plan(slug: str, raw: dict[str, object]) -> Plan:
    tiers = raw.get("tiers") or []
    assert isinstance(tiers, list)
    return Plan(
        slug=slug,
        name=str(raw["name"]),
        currency=str(raw.get("currency", "usd")),
        base_fee_minor=int(str(raw.get("base_fee_minor", 0))),
        included_calls=int(str(raw.get("included_calls", 0))),
        hard_cap=bool(raw.get("hard_cap", False)),
        tiers=tuple(
            Tier(
                up_to=None if tier.get("up_to") is None else int(tier["up_to"]),
                per_million_minor=Decimal(str(tier["per_million_minor"])),
            )
            for tier in tiers
        ),
        custom=bool(raw.get("custom", False)),
        contact=str(raw.get("contact", "")),
    )


@cache
def _load(path: str) -> dict[str, Plan]:
    raw = json.loads(Path(path).read_text())
    return {slug: _plan(slug, entry) for slug, entry in raw.items()}


def all_plans() -> dict[str, Plan]:
    return _load(str(getattr(settings, "BILLING_PLANS_FILE", "") or DEFAULT_PLANS_FILE))


def get_plan(slug: str) -> Plan:
    return all_plans()[slug]


FREE = "free"
