"""The consumers section in shards of ids: a consumer write recompiles and stores only its own
shard, and every version still holds exactly the document the whole catalog compiles to, as the
agents receive and check it."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import connection
from django_tenants.utils import schema_context

from gateway_agent.protocol import document_sha256, verify_served
from saas.gateways.agents import AgentContext, served_snapshot_json
from saas.gateways.models import ConfigSnapshot, GatewayCluster, SnapshotSection
from saas.gateways.publishing import compile_snapshot
from saas.gateways.snapshots import SHARD_WIDTH, snapshot_document, snapshot_texts
from tests.factories import CatalogWorld


def _next_consumer_id(cw: CatalogWorld, value: int) -> None:
    """The next consumer gets id `value`: consumers far apart without making thousands."""
    with schema_context(cw.world.a.org.schema_name), connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('catalog_consumer', 'id'), %s, false)", [value])


def _latest(cw: CatalogWorld) -> ConfigSnapshot:
    with schema_context(cw.world.a.org.schema_name):
        latest = ConfigSnapshot.objects.filter(cluster_id=cw.cluster_id).order_by("-version").first()
    assert latest is not None
    return latest


def _holds_the_whole_catalog(cw: CatalogWorld) -> ConfigSnapshot:
    """The latest version is the catalog compiled whole, and its agents receive and verify it."""
    world = cw.world.a
    with schema_context(world.org.schema_name):
        whole = compile_snapshot(GatewayCluster.objects.get(id=cw.cluster_id))
        latest = _latest(cw)
        assert snapshot_document(latest) == whole
    assert latest.sha256 == document_sha256(whole)
    context = AgentContext(
        organization_id=world.org.id, schema_name=world.org.schema_name, cluster_id=cw.cluster_id, token_id=0
    )
    served = served_snapshot_json(context, latest.version)
    assert served is not None
    verified = verify_served(served[1])
    assert [c["id"] for c in verified.served["document"]["consumers"]] == [
        c["id"] for c in whole["consumers"]
    ]
    return latest


def _sections_stored() -> set[str]:
    return set(SnapshotSection.objects.values_list("sha256", flat=True))


def test_a_consumer_write_stores_only_its_shard_and_every_version_is_the_whole_catalog(
    cw: CatalogWorld,
) -> None:
    client = cw.client()
    ids: dict[str, int] = {}

    def create(username: str, at: int | None = None, **body: Any) -> None:
        if at is not None:
            _next_consumer_id(cw, at)
        answer = client.post(cw.url("consumers/"), {"username": username, **body}, format="json")
        assert answer.status_code == 201, answer.content
        ids[username] = answer.json()["id"]
        _holds_the_whole_catalog(cw)

    create("first")
    create("middle-a", at=5 * SHARD_WIDTH)
    create("middle-b")
    create("edge", at=10 * SHARD_WIDTH - 1)
    create("next", labels={"tier": "free"})  # the first id of the next shard
    assert ids["next"] == 10 * SHARD_WIDTH
    shards = _latest(cw).shards["consumers"]
    assert sorted(shards, key=int) == ["0", "5", "9", "10"]

    # A change to one consumer stores one new shard; every other one is the latest's.
    with schema_context(cw.world.a.org.schema_name):
        before = _sections_stored()
    answer = client.patch(cw.url(f"consumers/{ids['middle-b']}/"), {"labels": {"team": "b"}}, format="json")
    assert answer.status_code == 200, answer.content
    latest = _holds_the_whole_catalog(cw)
    with schema_context(cw.world.a.org.schema_name):
        [added] = _sections_stored() - before
    assert latest.shards["consumers"] == {**shards, "5": added}

    # A credential (with a secret, decrypted only for the agents) and its removal.
    answer = client.post(
        cw.url(f"consumers/{ids['edge']}/credentials/"),
        {"type": "hmac-auth", "key_id": "edge"},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    latest = _holds_the_whole_catalog(cw)
    assert "_ciphertext" in snapshot_texts(latest)["consumers"]
    assert (
        client.delete(cw.url(f"consumers/{ids['edge']}/credentials/{answer.json()['id']}/")).status_code
        == 204
    )
    _holds_the_whole_catalog(cw)

    # The last consumer of a shard deleted: the shard is gone from the next version.
    assert client.delete(cw.url(f"consumers/{ids['next']}/")).status_code == 204
    latest = _holds_the_whole_catalog(cw)
    assert sorted(latest.shards["consumers"], key=int) == ["0", "5", "9"]


def test_a_version_stored_whole_is_followed_by_shards_holding_the_same_consumers(cw: CatalogWorld) -> None:
    """A version published before shards existed keeps serving; the next consumer write compiles
    the section whole and stores it in shards."""
    client = cw.client()
    for username in ("a", "b"):
        assert client.post(cw.url("consumers/"), {"username": username}, format="json").status_code == 201
    with schema_context(cw.world.a.org.schema_name):
        latest = _latest(cw)
        text = snapshot_texts(latest)["consumers"]
        sha = hashlib.sha256(text.encode()).hexdigest()
        SnapshotSection.objects.get_or_create(sha256=sha, defaults={"content": text})
        assert latest.sections["consumers"] == sha
        ConfigSnapshot.objects.filter(id=latest.id).update(shards={})  # as stored before shards
    old = _holds_the_whole_catalog(cw)
    assert old.shards == {}

    _next_consumer_id(cw, 3 * SHARD_WIDTH)
    assert client.post(cw.url("consumers/"), {"username": "c"}, format="json").status_code == 201
    latest = _holds_the_whole_catalog(cw)
    assert sorted(latest.shards["consumers"], key=int) == ["0", "3"]
    with schema_context(cw.world.a.org.schema_name):
        assert [c["username"] for c in snapshot_document(old)["consumers"]] == ["a", "b"]
