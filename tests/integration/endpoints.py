"""Every organization-scoped endpoint of the foundation, with a valid request for each and the
roles allowed to make it. The role matrix and the isolation tests both walk this list."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tenants.models import ApiToken, Invitation, Membership, Organization, User
from tenants.roles import Role
from tests.factories import add_member

ALL_ROLES = (Role.OWNER, Role.ADMIN, Role.DEVELOPER, Role.VIEWER, Role.BILLING)
MANAGERS = (Role.OWNER, Role.ADMIN)
BILLING = (Role.OWNER, Role.BILLING)


@dataclass
class Endpoint:
    name: str
    method: str
    # (organization, acting user) -> (path below /api/v1/orgs/<slug>/, JSON body)
    build: Callable[[Organization, User], tuple[str, dict[str, Any] | None]]
    allowed: tuple[str, ...]


def _invitation(org: Organization, user: User) -> Invitation:
    from django.utils import timezone

    from tenants.credentials import hash_secret, new_secret

    return Invitation.objects.create(
        organization=org,
        email=f"{new_secret()[:8].lower()}@invitee.example.com",
        role=Role.VIEWER,
        token_hash=hash_secret(new_secret()),
        invited_by=user,
        expires_at=timezone.now() + timezone.timedelta(days=1),
    )


def _token(org: Organization, user: User) -> ApiToken:
    from tenants.credentials import hash_secret, new_secret

    return ApiToken.objects.create(
        organization=org,
        user=user,
        name="t",
        role_ceiling=Role.VIEWER,
        prefix="sgw_x",
        token_hash=hash_secret(new_secret()),
    )


def _local_invoice(org: Organization) -> Any:
    from billing.services import issue_local_invoice
    from saas.metering.services import BillingPeriod

    return issue_local_invoice(org, BillingPeriod.parse("2026-10"))


def _target_member(org: Organization, user: User) -> Membership:
    return add_member(org, Role.VIEWER)


def _cluster_id(org: Organization) -> int:
    from django_tenants.utils import schema_context

    from saas.gateways.models import GatewayCluster

    with schema_context(org.schema_name):
        return GatewayCluster.objects.get_or_create(name="roles")[0].id


ENDPOINTS = [
    Endpoint("org.read", "get", lambda o, u: ("", None), ALL_ROLES),
    Endpoint("org.rename", "patch", lambda o, u: ("", {"name": "Renamed"}), MANAGERS),
    Endpoint("members.list", "get", lambda o, u: ("members/", None), ALL_ROLES),
    Endpoint(
        "members.change_role",
        "patch",
        lambda o, u: (f"members/{_target_member(o, u).id}/", {"role": Role.DEVELOPER}),
        MANAGERS,
    ),
    Endpoint(
        "members.remove", "delete", lambda o, u: (f"members/{_target_member(o, u).id}/", None), MANAGERS
    ),
    Endpoint("members.leave", "post", lambda o, u: ("members/leave/", None), ALL_ROLES),
    Endpoint("invitations.list", "get", lambda o, u: ("invitations/", None), MANAGERS),
    Endpoint(
        "invitations.create",
        "post",
        lambda o, u: ("invitations/", {"email": "new.person@example.com", "role": Role.VIEWER}),
        MANAGERS,
    ),
    Endpoint(
        "invitations.revoke", "delete", lambda o, u: (f"invitations/{_invitation(o, u).id}/", None), MANAGERS
    ),
    Endpoint(
        "invitations.resend",
        "post",
        lambda o, u: (f"invitations/{_invitation(o, u).id}/resend/", None),
        MANAGERS,
    ),
    Endpoint("tokens.list", "get", lambda o, u: ("tokens/", None), ALL_ROLES),
    Endpoint("tokens.create", "post", lambda o, u: ("tokens/", {"name": "ci"}), ALL_ROLES),
    Endpoint("tokens.revoke", "delete", lambda o, u: (f"tokens/{_token(o, u).id}/", None), ALL_ROLES),
    Endpoint("audit.list", "get", lambda o, u: ("audit-log/", None), MANAGERS),
    Endpoint("usage.read", "get", lambda o, u: ("usage/", None), (Role.OWNER, Role.BILLING)),
    Endpoint(
        "analytics.read",
        "get",
        lambda o, u: (f"clusters/{_cluster_id(o)}/analytics/?range=1h", None),
        (Role.OWNER, Role.ADMIN, Role.DEVELOPER, Role.VIEWER),
    ),
    Endpoint("aws.connection", "get", lambda o, u: ("aws/connection/", None), MANAGERS),
    Endpoint(
        "deployments.list",
        "get",
        lambda o, u: (f"clusters/{_cluster_id(o)}/deployments/", None),
        (Role.OWNER, Role.ADMIN, Role.DEVELOPER, Role.VIEWER),
    ),
    Endpoint("billing.summary", "get", lambda o, u: ("billing/", None), BILLING),
    Endpoint("billing.plan", "post", lambda o, u: ("billing/plan/", {"plan": "pro"}), BILLING),
    Endpoint("billing.invoices", "get", lambda o, u: ("billing/invoices/", None), BILLING),
    Endpoint(
        "billing.invoice_document",
        "get",
        lambda o, u: (f"billing/invoices/{_local_invoice(o).id}/document/", None),
        BILLING,
    ),
]


def call(client: Any, endpoint: Endpoint, slug: str, path: str, body: dict[str, Any] | None) -> Any:
    method = getattr(client, endpoint.method)
    url = f"/api/v1/orgs/{slug}/{path}"
    return method(url, body, format="json") if body is not None else method(url)
