"""No request a client can send yields a 500: random JSON bodies and ids against every endpoint."""

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenants.roles import Role

# Non-finite floats are not JSON; the raw `Infinity`/`NaN` tokens are covered in test_regressions.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=300),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4)
    ),
    max_leaves=10,
)
FIELDS = [
    "email",
    "password",
    "name",
    "organization_name",
    "slug",
    "role",
    "role_ceiling",
    "expires_at",
    "token",
]
bodies = st.one_of(
    json_values,
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5),
)
ids = st.one_of(st.integers(min_value=-(2**63), max_value=2**63), st.text(min_size=1, max_size=30))

WRITE_PATHS = [
    ("post", "/api/v1/auth/signup/"),
    ("post", "/api/v1/auth/login/"),
    ("post", "/api/v1/invitations/lookup/"),
    ("post", "/api/v1/invitations/accept/"),
    ("post", "/api/v1/orgs/"),
    ("patch", "/api/v1/orgs/{slug}/"),
    ("post", "/api/v1/orgs/{slug}/invitations/"),
    ("patch", "/api/v1/orgs/{slug}/members/{id}/"),
    ("delete", "/api/v1/orgs/{slug}/members/{id}/"),
    ("delete", "/api/v1/orgs/{slug}/invitations/{id}/"),
    ("post", "/api/v1/orgs/{slug}/invitations/{id}/resend/"),
    ("post", "/api/v1/orgs/{slug}/tokens/"),
    ("delete", "/api/v1/orgs/{slug}/tokens/{id}/"),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(WRITE_PATHS), body=bodies, object_id=ids)
def test_random_bodies_never_cause_a_server_error(world, target: tuple[str, str], body: Any, object_id: Any):
    method, path = target
    from urllib.parse import quote

    url = path.format(slug=world.a.org.slug, id=quote(str(object_id), safe=""))
    response = getattr(world.a.client(Role.OWNER), method)(url, body, format="json")
    assert response.status_code < 500, (url, body, response.content[:500])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    params=st.dictionaries(
        st.sampled_from(["action", "actor", "since", "until", "page", "page_size", "target_id"]),
        st.text(max_size=40),
        max_size=4,
    )
)
def test_random_audit_queries_never_cause_a_server_error(world, params: dict[str, str]):
    response = world.a.client(Role.OWNER).get(f"/api/v1/orgs/{world.a.org.slug}/audit-log/", params)
    assert response.status_code < 500, (params, response.content[:500])
