"""No body a client can send to the catalog yields a server error."""

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import build_catalog
from tests.integration.test_fuzz_inputs import json_values

FIELDS = [
    "name",
    "targets",
    "host",
    "port",
    "upstream",
    "service",
    "paths",
    "type",
    "value",
    "methods",
    "hosts",
    "headers",
    "priority",
    "plugins",
    "username",
    "labels",
    "key",
    "algorithm",
    "secret",
    "public_key",
    "password",
    "certificate",
    "private_key",
    "load_balancing",
    "hash_header",
    "scheme",
    "timeouts",
]
bodies = st.one_of(json_values, st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6))
PATHS = [
    ("post", "upstreams/"),
    ("post", "services/"),
    ("post", "routes/"),
    ("post", "consumers/"),
    ("post", "certificates/"),
    ("patch", "routes/{route}/"),
    ("put", "upstreams/{upstream}/"),
    ("post", "consumers/{consumer}/credentials/"),
    ("put", "plugins/cors/"),
    ("post", "config/?dry_run=true"),
    ("post", "openapi-import/"),
    ("post", "tokens/"),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(PATHS), body=bodies)
def test_random_catalog_bodies_never_cause_a_server_error(cw, target: tuple[str, str], body: Any):
    from tenants.roles import Role

    client = cw.client(Role.ADMIN)
    if not hasattr(cw, "_made"):
        made = build_catalog(client, cw.url)
        consumer = client.post(cw.url("consumers/"), {"username": "fuzz"}, format="json").json()
        cw._made = {
            "route": made["routes"]["id"],
            "upstream": made["upstreams"]["id"],
            "consumer": consumer["id"],
        }
    method, path = target
    response = getattr(client, method)(cw.url(path.format(**cw._made)), body, format="json")
    assert response.status_code < 500, (path, body, response.content[:500])
