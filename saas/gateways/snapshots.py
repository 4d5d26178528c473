"""Storing, listing and comparing config snapshots. Compiling a catalog into a snapshot is the
catalog's job (saas.catalog.publishing); this module keeps the history."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.db import transaction
from django_redis import get_redis_connection

from gateway_agent.protocol import Snapshot, document_sha256
from tenants.schemas import current_schema_name

from .models import ConfigSnapshot, GatewayCluster

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


def snapshot_channel(schema_name: str, cluster_id: int) -> str:
    """The Redis channel on which a cluster's agents hear about new snapshots."""
    return f"snapshots:{schema_name}:{cluster_id}"


def store_snapshot(
    cluster: GatewayCluster, document: dict[str, Any], *, author: str, reason: str
) -> ConfigSnapshot:
    """Store `document` as the cluster's next version, unless it equals the latest one. Must run
    inside the transaction of the change it publishes: no snapshot for a rolled-back write."""
    Snapshot.model_validate(document)  # the contract, checked before anything is stored
    sha256 = document_sha256(document)
    # Locking the cluster row makes versions strictly monotonic under concurrent writes.
    GatewayCluster.objects.select_for_update().filter(id=cluster.id).first()
    latest = ConfigSnapshot.objects.filter(cluster=cluster).order_by("-version").first()
    if latest is not None and latest.sha256 == sha256:
        return latest
    snapshot = ConfigSnapshot.objects.create(
        cluster=cluster,
        version=(latest.version + 1) if latest else 1,
        sha256=sha256,
        document=document,
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
