"""Roles and what each may do.

Permissions are scopes (as in Sentry): a role grants a set of scopes, and an API token's role
ceiling grants its own set; the caller gets the intersection. `billing` is not a rank above or
below the others: it sees billing and the organization, nothing of the catalog.
"""

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    DEVELOPER = "developer", "Developer"
    VIEWER = "viewer", "Viewer"
    BILLING = "billing", "Billing"


class Scope:
    ORG_READ = "org:read"
    ORG_WRITE = "org:write"
    MEMBER_READ = "member:read"
    MEMBER_WRITE = "member:write"
    OWNER_WRITE = "owner:write"  # grant, change or remove the owner role
    TOKEN_WRITE = "token:write"  # create and revoke one's own API tokens
    TOKEN_ADMIN = "token:admin"  # revoke anyone's API token in the org
    AUDIT_READ = "audit:read"
    CATALOG_READ = "catalog:read"
    CATALOG_WRITE = "catalog:write"
    CLUSTER_WRITE = "cluster:write"
    BILLING_READ = "billing:read"
    BILLING_WRITE = "billing:write"


_VIEWER = {Scope.ORG_READ, Scope.MEMBER_READ, Scope.TOKEN_WRITE, Scope.CATALOG_READ}
_DEVELOPER = _VIEWER | {Scope.CATALOG_WRITE}
_ADMIN = _DEVELOPER | {
    Scope.ORG_WRITE,
    Scope.MEMBER_WRITE,
    Scope.TOKEN_ADMIN,
    Scope.AUDIT_READ,
    Scope.CLUSTER_WRITE,
}
_OWNER = _ADMIN | {Scope.OWNER_WRITE, Scope.BILLING_READ, Scope.BILLING_WRITE}
_BILLING = {Scope.ORG_READ, Scope.MEMBER_READ, Scope.TOKEN_WRITE, Scope.BILLING_READ, Scope.BILLING_WRITE}

ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset(_OWNER),
    Role.ADMIN: frozenset(_ADMIN),
    Role.DEVELOPER: frozenset(_DEVELOPER),
    Role.VIEWER: frozenset(_VIEWER),
    Role.BILLING: frozenset(_BILLING),
}


# Scopes an API token never carries, whatever its ceiling: a leaked token must not be able to
# hand out, change or take away the owner role. An owner does that logged in, as themselves.
SESSION_ONLY_SCOPES: frozenset[str] = frozenset({Scope.OWNER_WRITE})


def scopes_for(role: str, ceiling: str | None = None) -> frozenset[str]:
    """The scopes of a member with `role`, limited by an API token's `ceiling` role if any."""
    scopes = ROLE_SCOPES[role]
    if ceiling is not None:
        scopes = (scopes & ROLE_SCOPES[ceiling]) - SESSION_ONLY_SCOPES
    return scopes


def can_grant(granter_scopes: frozenset[str], role: str) -> bool:
    """Only those who may manage owners may hand out the owner role."""
    if role == Role.OWNER:
        return Scope.OWNER_WRITE in granter_scopes
    return Scope.MEMBER_WRITE in granter_scopes
