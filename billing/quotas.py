"""What gateways must know of billing: whether the organization's allowance is used up. Billing
registers it as the `quota` section of every snapshot (BillingConfig.ready)."""

from __future__ import annotations

from typing import Any

from .models import BillingAccount
from .plans import get_plan


def gateway_quota(schema_name: str) -> dict[str, Any] | None:
    """The `quota` section of the snapshots of the organization with `schema_name`: None unless
    its hard-capped allowance is used up."""
    account = (
        BillingAccount.objects.filter(organization__schema_name=schema_name, quota_exceeded=True)
        .select_related("organization")
        .first()
    )
    if account is None or account.quota_resets_at is None:
        return None
    plan = get_plan(account.plan)
    return {
        "name": f"{plan.name} plan",
        "limit": plan.included_calls,
        "resets_at": account.quota_resets_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
