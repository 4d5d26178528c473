"""Identity's events in the audit log: a person's account spans their organizations, so each event
lands in every organization they are a member of."""

from __future__ import annotations

from typing import Any

from tenants import services as tenant_services
from tenants.audit import Actor, record_audit
from tenants.models import User


def audit_user(
    user: User,
    action: str,
    *,
    actor: Actor,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """One entry in each organization the user is a member of."""
    for organization, _role in tenant_services.organizations_of(user):
        record_audit(actor, organization, action, user, before=before, after=after)
