"""The audit log: every write records who, where, what and a short before/after summary.

It lives in the tenants app because tenants is the root every other app imports; catalog,
gateways and billing record their writes through `record_audit` too."""

from dataclasses import dataclass
from typing import Any

from django.db import models

from .models import ApiToken, AuditEntry, Organization, User


@dataclass(frozen=True)
class Actor:
    """Who is making a change: a user, possibly through an API token, from an address."""

    user: User | None
    api_token: ApiToken | None = None
    ip_address: str | None = None
    # Who acts when no user does: a developer of the organization's portal ("portal:<email>").
    name: str = ""


def summarize(value: Any) -> Any:
    """Keep summaries short: long strings are cut, so the log never stores whole documents."""
    if isinstance(value, str) and len(value) > 200:
        return value[:197] + "..."
    if isinstance(value, dict):
        return {key: summarize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [summarize(item) for item in value[:20]]
    return value


def record_audit(
    actor: Actor,
    organization: Organization,
    action: str,
    target: models.Model,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    changes: dict[str, Any] = {}
    if before is not None:
        changes["before"] = summarize(before)
    if after is not None:
        changes["after"] = summarize(after)
    return AuditEntry.objects.create(
        organization=organization,
        actor=actor.user,
        actor_email=actor.user.email if actor.user else actor.name,
        api_token=actor.api_token,
        action=action,
        target_type=target._meta.model_name or type(target).__name__.lower(),
        target_id=str(target.pk),
        target_repr=str(target)[:200],
        changes=changes,
        ip_address=actor.ip_address,
    )
