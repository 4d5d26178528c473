"""Gateway clusters and their agent tokens."""

import hashlib

import pytest
from django_tenants.utils import schema_context

from saas.gateways.models import ClusterToken
from tenants.models import AuditEntry
from tenants.roles import Role


def test_admin_creates_renames_and_deletes_a_cluster(world):
    client = world.a.client(Role.ADMIN)
    base = f"/api/v1/orgs/{world.a.org.slug}/clusters/"
    created = client.post(
        base, {"name": "staging", "description": "pre-prod", "labels": {"env": "staging"}}, format="json"
    )
    assert created.status_code == 201, created.content
    cluster = created.json()
    assert cluster["latest_version"] is None
    assert client.post(base, {"name": "staging"}, format="json").status_code == 400
    renamed = client.patch(f"{base}{cluster['id']}/", {"name": "pre-production"}, format="json")
    assert renamed.json()["name"] == "pre-production" and renamed.json()["labels"] == {"env": "staging"}
    assert [c["name"] for c in client.get(base).json()["results"]] == ["pre-production"]
    assert world.a.client(Role.VIEWER).get(base).status_code == 200
    assert client.delete(f"{base}{cluster['id']}/").status_code == 204
    assert client.get(base).json()["count"] == 0
    actions = set(AuditEntry.objects.filter(organization=world.a.org).values_list("action", flat=True))
    assert {"cluster.create", "cluster.update", "cluster.delete"} <= actions


def test_cluster_tokens_shown_once_hashed_rotated_and_revoked(cw):
    client = cw.client(Role.ADMIN)
    created = client.post(cw.url("tokens/"), {"name": "gateway-1"}, format="json")
    assert created.status_code == 201
    secret = created.json()["token"]
    org_id = cw.world.a.org.id
    assert secret.startswith(f"gct_{org_id}_")
    with schema_context(cw.world.a.org.schema_name):
        token = ClusterToken.objects.get(id=created.json()["id"])
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    listed = client.get(cw.url("tokens/")).json()["results"]
    assert "token" not in listed[0] and listed[0]["prefix"] == secret[: len(listed[0]["prefix"])]

    rotated = client.post(cw.url(f"tokens/{token.id}/rotate/"))
    assert rotated.status_code == 201
    assert rotated.json()["token"] != secret and rotated.json()["name"] == "gateway-1"
    with schema_context(cw.world.a.org.schema_name):
        assert ClusterToken.objects.get(id=token.id).revoked_at is not None
    assert client.delete(cw.url(f"tokens/{rotated.json()['id']}/")).status_code == 204
    assert client.post(cw.url(f"tokens/{token.id}/rotate/")).status_code == 400
    assert cw.client(Role.DEVELOPER).get(cw.url("tokens/")).status_code == 403


CATALOG_LISTS = [
    "upstreams/",
    "services/",
    "routes/",
    "consumers/",
    "certificates/",
    "plugins/",
    "snapshots/",
    "tokens/",
    "config/",
    "",
]


@pytest.mark.parametrize("path", CATALOG_LISTS)
def test_every_catalog_endpoint_is_closed_to_other_orgs(cw, path):
    assert cw.world.b.client(Role.OWNER).get(cw.url(path)).status_code == 404
    assert cw.world.b.client(Role.OWNER).post(cw.url(path), {}, format="json").status_code in (404, 405)
