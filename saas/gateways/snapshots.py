"""Storing, reading and comparing config snapshots. Compiling a catalog into a snapshot is the
the registered sections' job (saas.gateways.publishing); this module keeps the history.

A snapshot's document is stored as sections (one per top-level key) addressed by the SHA-256 of
their canonical JSON. Publishing a change recompiles only the sections it touched; the
document's hash is computed over the assembled canonical bytes, so it equals
`gateway_agent.protocol.document_sha256` of the whole document."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from functools import cache
from typing import Any

from django.db import transaction
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


class _SectionCache:
    """Recently used section texts, so publishing a route change does not re-read the
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


_cache = _SectionCache()


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


def _assemble(sections: dict[str, str], texts: dict[str, str]) -> bytes:
    parts = [json.dumps(key) + ":" + texts[sections[key]] for key in sorted(sections)]
    return ("{" + ",".join(parts) + "}").encode()


def snapshot_document(snapshot: ConfigSnapshot) -> dict[str, Any]:
    texts = section_texts(snapshot.sections.values())
    return {key: json.loads(texts[sha]) for key, sha in snapshot.sections.items()}


def snapshot_channel(schema_name: str, cluster_id: int) -> str:
    """The Redis channel on which a cluster's agents hear about new snapshots."""
    return f"snapshots:{schema_name}:{cluster_id}"


def store_snapshot(
    cluster: GatewayCluster, changed: dict[str, Any], *, author: str, reason: str
) -> ConfigSnapshot:
    """Store the cluster's next version: the latest one with the `changed` sections replaced
    (the first version needs them all), unless the result equals the latest. Each changed
    section is checked against the protocol first. Must run inside the transaction of the
    change it publishes: no snapshot for a rolled-back write."""
    # Locking the cluster row makes versions strictly monotonic under concurrent writes.
    GatewayCluster.objects.select_for_update().filter(id=cluster.id).first()
    latest = ConfigSnapshot.objects.filter(cluster=cluster).order_by("-version").first()
    sections: dict[str, str] = dict(latest.sections) if latest else {}
    new_texts: dict[str, str] = {}
    for key, value in changed.items():
        _validator(key).validate_python(value)  # the contract, before anything is stored
        text = canonical_json(value).decode()
        sha = hashlib.sha256(text.encode()).hexdigest()
        sections[key] = sha
        new_texts[sha] = text
    missing = set(DOCUMENT_KEYS) - set(sections)
    if missing:
        raise ValueError(f"A snapshot needs every section; missing {sorted(missing)}")
    texts = {**section_texts(sha for sha in sections.values() if sha not in new_texts), **new_texts}
    sha256 = hashlib.sha256(_assemble(sections, texts)).hexdigest()
    if latest is not None and latest.sha256 == sha256:
        return latest
    SnapshotSection.objects.bulk_create(
        [SnapshotSection(sha256=sha, content=text) for sha, text in new_texts.items()], ignore_conflicts=True
    )
    for sha, text in new_texts.items():
        _cache.put(sha, text)
    snapshot = ConfigSnapshot.objects.create(
        cluster=cluster,
        version=(latest.version + 1) if latest else 1,
        sha256=sha256,
        sections=sections,
        author=author,
        reason=reason[:200],
    )
    schema_name = current_schema_name()
    transaction.on_commit(lambda: _notify(schema_name, cluster.id, snapshot.version))
    return snapshot


def _notify(schema_name: str, cluster_id: int, version: int) -> None:
    try:
        get_redis_connection("default").publish(snapshot_channel(schema_name, cluster_id), str(version))
    except Exception:
        # Agents also poll with their current version, so a lost notification delays, never loses.
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
                SnapshotSection.objects.bulk_create(
                    [SnapshotSection(sha256=new_sha, content=new_text)], ignore_conflicts=True
                )
                renamed[sha] = new_sha
        if not renamed:
            return count
        for snapshot in ConfigSnapshot.objects.select_for_update().order_by("id"):
            if not renamed.keys() & set(snapshot.sections.values()):
                continue
            snapshot.sections = {key: renamed.get(sha, sha) for key, sha in snapshot.sections.items()}
            snapshot.sha256 = hashlib.sha256(
                _assemble(snapshot.sections, section_texts(snapshot.sections.values()))
            ).hexdigest()
            snapshot.save(update_fields=["sections", "sha256"])
        SnapshotSection.objects.filter(sha256__in=renamed.keys()).delete()
    return count
