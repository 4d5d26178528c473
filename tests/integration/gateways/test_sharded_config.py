"""The config poll with shards (`shards=1`): an agent that holds many consumers receives them as
the shards the control plane stores, and with `have=N` only the shards that differ from version
N's. Both forms of a version check to the same hashes, secrets decrypted."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest
from django.db import connection
from django_tenants.utils import schema_context

from saas.gateways.models import ConfigSnapshot, SnapshotSection
from saas.gateways.snapshots import SHARD_WIDTH, snapshot_texts
from tenants.roles import Role
from tests.agent_api import call_agent_api
from tests.factories import CatalogWorld

# The config long-poll reads the database from a shared thread pool, on connections of its own:
# what the tests write must be committed for it to see.
pytestmark = pytest.mark.django_db(transaction=True)


def _token(cw: CatalogWorld) -> str:
    answer = cw.client(Role.ADMIN).post(cw.url("tokens/"), {"name": "gw"}, format="json")
    return str(answer.json()["token"])


def _config(token: str, query: str) -> httpx.Response:
    return call_agent_api("GET", f"/agent/v1/config?wait=0&{query}", token)


def _polled(token: str, query: str) -> dict[str, Any]:
    answer = _config(token, query)
    assert answer.status_code == 200, answer.content
    return dict(answer.json())


def _next_consumer_id(cw: CatalogWorld, value: int) -> None:
    """The next consumer gets id `value`: consumers in shards far apart without making thousands."""
    with schema_context(cw.world.a.org.schema_name), connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('catalog_consumer', 'id'), %s, false)", [value])


def _create_consumer(cw: CatalogWorld, username: str, at: int | None = None) -> int:
    if at is not None:
        _next_consumer_id(cw, at)
    answer = cw.client().post(cw.url("consumers/"), {"username": username}, format="json")
    assert answer.status_code == 201, answer.content
    return int(answer.json()["id"])


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _section(shard_texts: dict[str, str]) -> str:
    """The whole section as the spec joins it: the shards without their brackets, by index."""
    return "[" + ",".join(shard_texts[index][1:-1] for index in sorted(shard_texts, key=int)) + "]"


def _checks_as_the_whole(sharded: dict[str, Any], whole: dict[str, Any], held: dict[str, str]) -> None:
    """Each shard sent hashes to its listed sha; the shards sent over those `held` make the section
    the whole body serves, with the same section and document hashes."""
    texts = {**held, **sharded["shard_texts"]["consumers"]}
    assert sorted(texts, key=int) == sorted(sharded["shards"]["consumers"], key=int)
    for index, text in sharded["shard_texts"]["consumers"].items():
        assert _sha256(text) == sharded["shards"]["consumers"][index]
    section = _section(texts)
    assert _sha256(section) == sharded["sections"]["consumers"] == whole["sections"]["consumers"]
    assert json.loads(section) == whole["document"]["consumers"]
    assert sharded["sections"] == whole["sections"]
    assert (sharded["version"], sharded["sha256"]) == (whole["version"], whole["sha256"])
    assert sharded["served_sha256"] == whole["served_sha256"]
    assert "consumers" not in sharded["document"]
    assert set(sharded["sections"]) == set(sharded["document"]) | set(sharded["shards"])
    document = {**sharded["document"], "consumers": json.loads(section)}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert _sha256(canonical) == sharded["served_sha256"]


def test_an_agent_taking_shards_receives_every_consumer_shard_with_the_hashes_of_the_whole(
    cw: CatalogWorld,
) -> None:
    token = _token(cw)
    _create_consumer(cw, "first")
    _create_consumer(cw, "second")
    _create_consumer(cw, "far", at=2 * SHARD_WIDTH + 5)

    sharded = _polled(token, "shards=1")
    whole = _polled(token, "shards=0")
    assert sorted(sharded["shards"]["consumers"], key=int) == ["0", "2"]
    assert sorted(sharded["shard_texts"]["consumers"], key=int) == ["0", "2"]
    assert "base_version" not in sharded
    _checks_as_the_whole(sharded, whole, {})
    assert sharded["document"] == {
        key: value for key, value in whole["document"].items() if key != "consumers"
    }
    # A poll without `shards` is the whole body, as before.
    assert _config(token, "").content == _config(token, "shards=0").content


def test_an_agent_holding_the_previous_version_receives_only_the_shards_that_changed(
    cw: CatalogWorld,
) -> None:
    token = _token(cw)
    _create_consumer(cw, "first")
    far = _create_consumer(cw, "far", at=2 * SHARD_WIDTH)
    first = _polled(token, "shards=1")
    held = first["shard_texts"]["consumers"]

    answer = cw.client().patch(cw.url(f"consumers/{far}/"), {"labels": {"team": "b"}}, format="json")
    assert answer.status_code == 200, answer.content
    changed = _polled(token, f"version={first['version']}&shards=1&have={first['version']}")
    assert changed["version"] > first["version"]
    assert changed["base_version"] == first["version"]
    assert list(changed["shard_texts"]["consumers"]) == ["2"]
    assert changed["shards"]["consumers"]["0"] == first["shards"]["consumers"]["0"]
    assert changed["shards"]["consumers"]["2"] != first["shards"]["consumers"]["2"]
    whole = _polled(token, f"version={first['version']}")
    _checks_as_the_whole(changed, whole, held)

    # A consumer in a new shard: that shard alone is sent.
    _create_consumer(cw, "farther", at=7 * SHARD_WIDTH)
    added = _polled(token, f"shards=1&have={changed['version']}")
    assert added["base_version"] == changed["version"]
    assert list(added["shard_texts"]["consumers"]) == ["7"]
    held = {**held, **changed["shard_texts"]["consumers"]}
    _checks_as_the_whole(added, _polled(token, "shards=0"), held)

    # The last consumer of a shard deleted: the shard is gone, nothing is sent.
    assert cw.client().delete(cw.url(f"consumers/{far}/")).status_code == 204
    removed = _polled(token, f"shards=1&have={added['version']}")
    assert removed["base_version"] == added["version"]
    assert removed["shard_texts"] == {"consumers": {}}
    assert sorted(removed["shards"]["consumers"], key=int) == ["0", "7"]
    held = {
        index: text for index, text in {**held, **added["shard_texts"]["consumers"]}.items() if index != "2"
    }
    _checks_as_the_whole(removed, _polled(token, "shards=0"), held)

    # A version the control plane does not have: every shard, no base.
    unknown = _polled(token, "shards=1&have=999999")
    assert "base_version" not in unknown
    assert sorted(unknown["shard_texts"]["consumers"], key=int) == ["0", "7"]
    _checks_as_the_whole(unknown, _polled(token, "shards=0"), {})


def test_a_consumer_secret_is_served_decrypted_in_its_shard(cw: CatalogWorld) -> None:
    token = _token(cw)
    consumer = _create_consumer(cw, "signer", at=3 * SHARD_WIDTH)
    credentials = cw.url(f"consumers/{consumer}/credentials/")
    jwt = cw.client().post(credentials, {"type": "jwt-auth", "key": "signer"}, format="json").json()
    hmac = cw.client().post(credentials, {"type": "hmac-auth", "key_id": "signer"}, format="json").json()

    sharded = _polled(token, "shards=1")
    text = sharded["shard_texts"]["consumers"]["3"]
    assert "_ciphertext" not in text
    assert _sha256(text) == sharded["shards"]["consumers"]["3"]
    [served] = json.loads(text)
    assert sorted(credential["secret"] for credential in served["credentials"]) == sorted(
        [jwt["secret"], hmac["secret"]]
    )
    # The stored shard holds only ciphertext.
    with schema_context(cw.world.a.org.schema_name):
        latest = ConfigSnapshot.objects.filter(cluster_id=cw.cluster_id).order_by("-version").first()
        assert latest is not None
        assert jwt["secret"] not in snapshot_texts(latest)["consumers"]
    _checks_as_the_whole(sharded, _polled(token, "shards=0"), {})


def test_a_version_stored_before_shards_is_served_in_shards(cw: CatalogWorld) -> None:
    token = _token(cw)
    _create_consumer(cw, "a")
    _create_consumer(cw, "c", at=3 * SHARD_WIDTH)
    with schema_context(cw.world.a.org.schema_name):
        latest = ConfigSnapshot.objects.filter(cluster_id=cw.cluster_id).order_by("-version").first()
        assert latest is not None
        text = snapshot_texts(latest)["consumers"]
        SnapshotSection.objects.get_or_create(sha256=_sha256(text), defaults={"content": text})
        ConfigSnapshot.objects.filter(id=latest.id).update(shards={})  # as stored before shards

    old = _polled(token, "shards=1")
    assert old["version"] == latest.version
    assert sorted(old["shards"]["consumers"], key=int) == ["0", "3"]
    _checks_as_the_whole(old, _polled(token, "shards=0"), {})

    # The next version is stored in the shards the old one was served in.
    _create_consumer(cw, "d", at=5 * SHARD_WIDTH)
    following = _polled(token, "shards=1")
    assert {index: following["shards"]["consumers"][index] for index in ("0", "3")} == old["shards"][
        "consumers"
    ]
    # A `have` stored before shards holds none to leave out.
    based = _polled(token, f"shards=1&have={old['version']}")
    assert based["base_version"] == old["version"]
    assert sorted(based["shard_texts"]["consumers"], key=int) == ["0", "3", "5"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("shards=2", "shards"),
        ("shards=yes", "shards"),
        ("have=abc", "have"),
        ("have=-1", "have"),
        ("have=²", "have"),
    ],
)
def test_a_bad_shards_or_have_is_answered_400_naming_it(cw: CatalogWorld, query: str, field: str) -> None:
    token = _token(cw)
    _create_consumer(cw, "a")
    answer = _config(token, f"shards=1&{query}" if field == "have" else query)
    assert answer.status_code == 400, answer.content
    assert list(answer.json()["errors"]) == [field]
