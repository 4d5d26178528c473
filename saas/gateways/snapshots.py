"""Storing, reading and comparing config snapshots. Compiling a catalog into a snapshot is the
the registered sections' job (saas.gateways.publishing); this module keeps the history.

A snapshot's document is stored as sections (one per top-level key) addressed by the SHA-256 of
their canonical JSON. Publishing a change recompiles only the sections it touched; the
document's hash is computed over the assembled canonical bytes, so it equals
`gateway_agent.protocol.document_sha256` of the whole document.

The consumers section, which the developer portal grows to 100,000 entries, is stored in shards
of SHARD_WIDTH consecutive ids, each a section of its own; the section is their concatenation,
which is the canonical JSON of the whole list, since both are ordered by id. A write that names
the consumers it changed recompiles, checks and stores only their shards."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from functools import cache
from typing import Any

from django.db import connection, transaction
from django_redis import get_redis_connection
from pydantic import TypeAdapter

from core.encryption import RotationCount, reencrypted
from gateway_agent.protocol import Snapshot, canonical_json
from tenants.schemas import current_schema_name

from .models import ConfigSnapshot, GatewayCluster, SnapshotSection

logger = logging.getLogger(__name__)

# Sections of the document that are lists of entities, and the key that identifies an entity.
SECTIONS = {
    "global_plugins": "name",
    "upstreams": "id",
    "services": "id",
    "routes": "id",
    "consumers": "id",
    "certificates": "id",
}
DOCUMENT_KEYS = tuple(sorted(Snapshot.model_fields))
# Sections stored in shards of entity ids (SHARD_WIDTH ids a shard), and what their entities are
# validated as.
SHARDED_SECTIONS = ("consumers",)
SHARD_WIDTH = 1000


class SectionCache:
    """Recently used section texts by hash, so publishing a route change does not re-read the
    consumers section from PostgreSQL each time. Bounded by total size."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._items: OrderedDict[str, str] = OrderedDict()
        self._bytes = 0
        self._max = max_bytes
        self._lock = threading.Lock()

    def get(self, sha256: str) -> str | None:
        with self._lock:
            text = self._items.get(sha256)
            if text is not None:
                self._items.move_to_end(sha256)
            return text

    def put(self, sha256: str, text: str) -> None:
        with self._lock:
            if sha256 in self._items:
                return
            self._items[sha256] = text
            self._bytes += len(text)
            while self._bytes > self._max and self._items:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)


_cache = SectionCache()


@cache
def _validator(key: str) -> TypeAdapter[Any]:
    annotation = Snapshot.model_fields[key].annotation
    assert annotation is not None
    return TypeAdapter(annotation)


def section_texts(shas: Iterable[str]) -> dict[str, str]:
    wanted = set(shas)
    found = {sha: text for sha in wanted if (text := _cache.get(sha)) is not None}
    missing = wanted - set(found)
    if missing:
        for sha, text in SnapshotSection.objects.filter(sha256__in=missing).values_list("sha256", "content"):
            _cache.put(sha, text)
            found[sha] = text
    return found


def _sharded_text(shards: dict[str, str], texts: dict[str, str]) -> str:
    """A sharded section's canonical JSON: its shards' entities, in the order of their ids."""
    # A shard holds one entity at least: an empty one is not kept.
    return "[" + ",".join(texts[shards[index]][1:-1] for index in sorted(shards, key=int)) + "]"


def _texts_by_key(
    sections: dict[str, str], shards: dict[str, dict[str, str]], known: dict[str, str]
) -> dict[str, str]:
    """Each section's text by its key: stored ones by their hash, sharded ones assembled from
    their shards; `known` (hash -> text) spares the reads of those just made."""
    stored = {key: sha for key, sha in sections.items() if key not in shards}
    wanted = {*stored.values(), *(sha for pieces in shards.values() for sha in pieces.values())}
    texts = {**section_texts(wanted - known.keys()), **known}
    return {
        **{key: texts[sha] for key, sha in stored.items()},
        **{key: _sharded_text(pieces, texts) for key, pieces in shards.items()},
    }


def section_shards(snapshot: ConfigSnapshot, key: str) -> tuple[dict[str, str], dict[str, str]]:
    """A sharded section's shards (index -> stored hash) and the texts of those not stored
    (hash -> text): a version stored before shards existed has its section split here, into the
    shards a publish of the same consumers stores."""
    if key in snapshot.shards:
        return dict(snapshot.shards[key]), {}
    sha = snapshot.sections[key]
    shards: dict[str, str] = {}
    texts: dict[str, str] = {}
    for index, entities in sorted(_split_into_shards(json.loads(section_texts([sha])[sha])).items()):
        text = canonical_json(entities).decode()
        shards[str(index)] = hashlib.sha256(text.encode()).hexdigest()
        texts[shards[str(index)]] = text
    return shards, texts


def snapshot_texts(snapshot: ConfigSnapshot) -> dict[str, str]:
    """The snapshot's sections as canonical JSON texts, by key."""
    return _texts_by_key(snapshot.sections, snapshot.shards, {})


def _assemble(by_key: dict[str, str]) -> bytes:
    parts = [json.dumps(key) + ":" + by_key[key] for key in sorted(by_key)]
    return ("{" + ",".join(parts) + "}").encode()


def snapshot_document(snapshot: ConfigSnapshot) -> dict[str, Any]:
    return {key: json.loads(text) for key, text in snapshot_texts(snapshot).items()}


def shard_of(entity_id: int) -> int:
    return entity_id // SHARD_WIDTH


def _split_into_shards(entities: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    pieces: dict[int, list[dict[str, Any]]] = {}
    for entity in entities:
        pieces.setdefault(shard_of(entity["id"]), []).append(entity)
    return pieces


def _checked_text(key: str, value: Any) -> tuple[str, str]:
    """(sha256, canonical JSON) of a section or shard, checked against the protocol first."""
    _validator(key).validate_python(value)  # the contract, before anything is stored
    text = canonical_json(value).decode()
    return hashlib.sha256(text.encode()).hexdigest(), text


def snapshot_channel(schema_name: str, cluster_id: int) -> str:
    """The Redis channel on which a cluster's agents hear about new snapshots."""
    return f"snapshots:{schema_name}:{cluster_id}"


def store_snapshot(
    cluster: GatewayCluster,
    changed: dict[str, Any],
    *,
    author: str,
    reason: str,
    changed_shards: dict[str, dict[int, list[dict[str, Any]]]] | None = None,
) -> ConfigSnapshot:
    """Store the cluster's next version: the latest one with the `changed` sections replaced
    (the first version needs them all), and in `changed_shards` the shards of a sharded section
    replaced (an empty one removed), unless the result equals the latest. Each changed section
    and shard is checked against the protocol first. Must run inside the transaction of the
    change it publishes: no snapshot for a rolled-back write."""
    # Locking the cluster row makes versions strictly monotonic under concurrent writes.
    GatewayCluster.objects.select_for_update().filter(id=cluster.id).first()
    latest = ConfigSnapshot.objects.filter(cluster=cluster).order_by("-version").first()
    sections: dict[str, str] = dict(latest.sections) if latest else {}
    shards: dict[str, dict[str, str]] = {
        key: dict(value) for key, value in (latest.shards if latest else {}).items()
    }
    new_texts: dict[str, str] = {}
    changed_shards = dict(changed_shards or {})
    for key, value in changed.items():
        if key in SHARDED_SECTIONS:  # compiled whole: stored as shards
            shards[key] = {}
            changed_shards[key] = _split_into_shards(value)
            continue
        sha, text = _checked_text(key, value)
        sections[key] = sha
        shards.pop(key, None)
        new_texts[sha] = text
    for key, pieces in changed_shards.items():
        if key not in shards:
            raise ValueError(f"the {key!r} section has no shards to change: compile it whole")
        for index, entities in pieces.items():
            if not entities:
                shards[key].pop(str(index), None)
                continue
            sha, text = _checked_text(key, entities)
            shards[key][str(index)] = sha
            new_texts[sha] = text
    missing = set(DOCUMENT_KEYS) - set(sections) - set(shards)
    if missing:
        raise ValueError(f"A snapshot needs every section; missing {sorted(missing)}")
    by_key = _texts_by_key(sections, shards, new_texts)
    for key in shards:
        sections[key] = hashlib.sha256(by_key[key].encode()).hexdigest()
    sha256 = hashlib.sha256(_assemble(by_key)).hexdigest()
    if latest is not None and latest.sha256 == sha256:
        return latest
    # What the latest version holds is stored already: a section compiled whole sends only the
    # shards that changed. (A sharded section's own hash has no row: it is not counted.)
    stored = _stored_shas(latest) if latest else set()
    for sha in new_texts.keys() & stored:
        _cache.put(sha, new_texts.pop(sha))
    _store_sections(new_texts)
    snapshot = ConfigSnapshot.objects.create(
        cluster=cluster,
        version=(latest.version + 1) if latest else 1,
        sha256=sha256,
        sections=sections,
        shards=shards,
        author=author,
        reason=reason[:200],
    )
    schema_name = current_schema_name()
    transaction.on_commit(lambda: _notify(schema_name, cluster.id, snapshot.version, snapshot.sha256))
    return snapshot


def _stored_shas(snapshot: ConfigSnapshot) -> set[str]:
    """The sections and shards `snapshot` reads from storage."""
    shards = snapshot.shards
    return {
        *(sha for key, sha in snapshot.sections.items() if key not in shards),
        *(sha for pieces in shards.values() for sha in pieces.values()),
    }


def _store_sections(texts: dict[str, str]) -> None:
    """Store sections by their hash, each once. One INSERT a section with plain parameters:
    bulk_create sends its rows as arrays (INSERT ... SELECT FROM UNNEST), and a section of
    100,000 consumers (21 MB) inside an array literal took 3.4 s to write, against 0.4 s."""
    table = connection.ops.quote_name(SnapshotSection._meta.db_table)
    with connection.cursor() as cursor:
        for sha, text in texts.items():
            cursor.execute(
                f"INSERT INTO {table} (sha256, content) VALUES (%s, %s) ON CONFLICT (sha256) DO NOTHING",  # noqa: S608 - the model's own table
                [sha, text],
            )
            _cache.put(sha, text)


def _notify(schema_name: str, cluster_id: int, version: int, sha256: str) -> None:
    """Announce the cluster's new latest version, as `<version>:<sha256>`: the web processes
    answer polls from what they heard (saas.gateways.notifier) instead of asking the database."""
    try:
        get_redis_connection("default").publish(
            snapshot_channel(schema_name, cluster_id), f"{version}:{sha256}"
        )
    except Exception:
        # Web processes keep what they heard 30 s at most, and agents poll with their version:
        # a lost notification delays a change, never loses it.
        logger.exception("Could not announce snapshot %s of cluster %s", version, cluster_id)


def diff_documents(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A structured diff: per section, the entities added, removed and changed (with the
    changed fields' old and new values)."""
    result: dict[str, Any] = {}
    for section, key in SECTIONS.items():
        before = {item[key]: item for item in old.get(section, [])}
        after = {item[key]: item for item in new.get(section, [])}
        added = [after[k] for k in sorted(after.keys() - before.keys(), key=str)]
        removed = [before[k] for k in sorted(before.keys() - after.keys(), key=str)]
        changed = []
        for k in sorted(before.keys() & after.keys(), key=str):
            if before[k] != after[k]:
                fields = sorted(set(before[k]) | set(after[k]))
                changes = {
                    field: {"old": before[k].get(field), "new": after[k].get(field)}
                    for field in fields
                    if before[k].get(field) != after[k].get(field)
                }
                changed.append(
                    {key: k, "name": after[k].get("name", after[k].get("username")), "changes": changes}
                )
        if added or removed or changed:
            result[section] = {"added": added, "removed": removed, "changed": changed}
    return result


REDACTED_FIELDS = ("secret_ciphertext", "private_key_ciphertext")


def redact(document: Any) -> Any:
    """A document as people may read it: ciphertext replaced by a fingerprint, so diffs still
    show that a secret changed. Only the cluster's agents receive the ciphertext."""
    if isinstance(document, dict):
        return {
            key: (
                f"encrypted:{hashlib.sha256(value.encode()).hexdigest()[:12]}"
                if key in REDACTED_FIELDS and value
                else redact(value)
            )
            for key, value in document.items()
        }
    if isinstance(document, list):
        return [redact(item) for item in document]
    return document


def _reencrypt_in(value: Any, count: RotationCount) -> Any:
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if key in REDACTED_FIELDS and isinstance(item, str) and item:
                new = reencrypted(item)
                count.rotated, count.current = (
                    count.rotated + (new is not None),
                    count.current + (new is None),
                )
                result[key] = new or item
            else:
                result[key] = _reencrypt_in(item, count)
        return result
    if isinstance(value, list):
        return [_reencrypt_in(item, count) for item in value]
    return value


def rotate_snapshot_secrets() -> RotationCount:
    """Re-encrypt the ciphertext kept in the current schema's snapshot history under the first
    key, so a rollback to any version still decrypts once the old key is gone. A section is
    addressed by its hash, so a rewritten section is stored under its new hash, the snapshots
    using it point there (their document hash recomputed) and the old section is deleted.
    Versions do not change, and agents poll by version: they fetch nothing again."""
    count = RotationCount()
    renamed: dict[str, str] = {}
    with transaction.atomic():
        candidates = SnapshotSection.objects.filter(content__contains="_ciphertext").select_for_update()
        for sha, text in candidates.values_list("sha256", "content"):
            section_count = RotationCount()
            rewritten = _reencrypt_in(json.loads(text), section_count)
            count += section_count
            if section_count.rotated:
                new_text = canonical_json(rewritten).decode()
                new_sha = hashlib.sha256(new_text.encode()).hexdigest()
                _store_sections({new_sha: new_text})
                renamed[sha] = new_sha
        if not renamed:
            return count
        for snapshot in ConfigSnapshot.objects.select_for_update().order_by("id"):
            if not renamed.keys() & _stored_shas(snapshot):
                continue
            snapshot.shards = {
                key: {index: renamed.get(sha, sha) for index, sha in pieces.items()}
                for key, pieces in snapshot.shards.items()
            }
            snapshot.sections = {key: renamed.get(sha, sha) for key, sha in snapshot.sections.items()}
            by_key = snapshot_texts(snapshot)
            for key in snapshot.shards:
                snapshot.sections[key] = hashlib.sha256(by_key[key].encode()).hexdigest()
            snapshot.sha256 = hashlib.sha256(_assemble(by_key)).hexdigest()
            snapshot.save(update_fields=["sections", "shards", "sha256"])
        SnapshotSection.objects.filter(sha256__in=renamed.keys()).delete()
    return count
