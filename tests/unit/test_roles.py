from tenants.roles import ROLE_SCOPES, Role, Scope, can_grant, scopes_for


def test_ranks_nest_and_billing_stands_apart():
    assert (
        ROLE_SCOPES[Role.VIEWER]
        < ROLE_SCOPES[Role.DEVELOPER]
        < ROLE_SCOPES[Role.ADMIN]
        < ROLE_SCOPES[Role.OWNER]
    )
    assert Scope.CATALOG_READ not in ROLE_SCOPES[Role.BILLING]
    assert Scope.BILLING_READ in ROLE_SCOPES[Role.BILLING]
    assert Scope.BILLING_READ not in ROLE_SCOPES[Role.ADMIN]


def test_token_ceiling_intersects():
    assert scopes_for(Role.OWNER, Role.VIEWER) == ROLE_SCOPES[Role.VIEWER]
    assert scopes_for(Role.VIEWER, Role.OWNER) == ROLE_SCOPES[Role.VIEWER]
    assert scopes_for(Role.ADMIN, Role.BILLING) == ROLE_SCOPES[Role.ADMIN] & ROLE_SCOPES[Role.BILLING]


def test_only_owners_grant_owner():
    assert can_grant(ROLE_SCOPES[Role.OWNER], Role.OWNER)
    assert not can_grant(ROLE_SCOPES[Role.ADMIN], Role.OWNER)
    assert can_grant(ROLE_SCOPES[Role.ADMIN], Role.DEVELOPER)
    assert not can_grant(ROLE_SCOPES[Role.DEVELOPER], Role.VIEWER)
