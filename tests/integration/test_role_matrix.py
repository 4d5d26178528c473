"""Every role against every organization endpoint: allowed, or 403."""

import pytest

from tenants.roles import Role

from .endpoints import ALL_ROLES, ENDPOINTS, call


@pytest.mark.parametrize("role", ALL_ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_role_matrix(world, endpoint, role):
    side = world.a
    user = side.user(role)
    path, body = endpoint.build(side.org, user)
    response = call(side.client(role), endpoint, side.org.slug, path, body)
    if role in endpoint.allowed:
        if endpoint.name == "members.leave" and role == Role.OWNER:
            # Allowed, but the organization's only owner may not leave.
            assert response.status_code == 400, response.content
        else:
            assert response.status_code < 300, (endpoint.name, role, response.status_code, response.content)
    else:
        assert response.status_code == 403, (endpoint.name, role, response.status_code, response.content)
        assert response.json() == {"detail": "Your role does not allow this."}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_anonymous_is_refused(api, world, endpoint):
    path, body = endpoint.build(world.a.org, world.a.user(Role.OWNER))
    response = call(api, endpoint, world.a.org.slug, path, body)
    assert response.status_code in (401, 403)
    assert "detail" in response.json()
