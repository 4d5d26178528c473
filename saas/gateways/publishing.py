"""Compiling, publishing and rolling back a cluster's configuration: gateways own the snapshot;
other apps contribute to it through a registry.

A snapshot document (`gateway_agent.protocol.Snapshot`) is made of sections. Each app that owns
part of the configuration registers, when Django starts (its AppConfig.ready), a compiler for
each of its sections (the catalog: routes, services...; billing: the quota) and, if a rollback
must restore its rows, a restorer. Gateways import none of them, and none of them reaches into
another to publish: every write calls `publish` here, in its own transaction."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from django.db import transaction

from core.errors import InvalidInput
from gateway_agent.protocol import SCHEMA_VERSION, Snapshot
from tenants.audit import record_audit

from .clusters import Author
from .models import ConfigSnapshot, GatewayCluster
from .snapshots import SHARD_WIDTH, SHARDED_SECTIONS, shard_of, snapshot_document, store_snapshot

SectionCompiler = Callable[[GatewayCluster], Any]
# The entities of a sharded section (snapshots.SHARDED_SECTIONS) whose ids are in [first, end).
ShardCompiler = Callable[[GatewayCluster, int, int], list[dict[str, Any]]]
# Restores an app's rows to what a snapshot document holds, before the rollback publishes.
Restorer = Callable[[GatewayCluster, dict[str, Any], Author], None]

_compilers: dict[str, SectionCompiler] = {
    "schema_version": lambda cluster: SCHEMA_VERSION,
    "cluster_id": lambda cluster: cluster.id,
}
_shard_compilers: dict[str, ShardCompiler] = {}
_restorers: list[Restorer] = []


def register_section(name: str, compile_section: SectionCompiler) -> None:
    """Make `compile_section` the source of the document's `name` section."""
    if name not in Snapshot.model_fields:
        raise ValueError(f"{name!r} is not a section of the snapshot protocol")
    if name in _compilers and _compilers[name] is not compile_section:
        raise ValueError(f"the {name!r} section is already registered")
    _compilers[name] = compile_section


def register_shard_compiler(name: str, compile_shard: ShardCompiler) -> None:
    """Make `compile_shard` compile the entities of one shard of the sharded section `name`: a
    write that names the ids it changed then recompiles only their shards."""
    if name not in SHARDED_SECTIONS:
        raise ValueError(f"{name!r} is not a sharded section")
    _shard_compilers[name] = compile_shard


def register_restorer(restore: Restorer) -> None:
    if restore not in _restorers:
        _restorers.append(restore)


def compile_snapshot(cluster: GatewayCluster, sections: Iterable[str] | None = None) -> dict[str, Any]:
    """The configuration of `cluster` as a snapshot document, or just the named sections of it.
    Deterministic: the same configuration gives the same document."""
    missing = set(Snapshot.model_fields) - set(_compilers)
    if missing:
        raise RuntimeError(f"no app registered the snapshot sections {sorted(missing)}")
    keys = _compilers.keys() if sections is None else sections
    return {key: _compilers[key](cluster) for key in keys}


def publish(
    cluster: GatewayCluster,
    *,
    author: str,
    reason: str,
    sections: Iterable[str] | None = None,
    changed_ids: Mapping[str, Collection[int]] | None = None,
) -> ConfigSnapshot:
    """Compile and store the cluster's next snapshot, in the caller's transaction (no snapshot
    for a rolled-back write). A writer that names the `sections` it touched has only those
    recompiled; the rest is reused. Of a sharded section (the consumers), a writer that names in
    `changed_ids` the only entities it changed has only their shards recompiled. A change that
    compiles to the latest document publishes nothing new: the latest snapshot is returned."""
    # The cluster is locked before compiling, not only when storing: two writes of one section
    # compiling at once each saw only their own uncommitted row, and the second version stored
    # lacked the first write (a consumer missing at the gateway until the next change). Locked
    # first, the second compiles after the first commits, and sees both.
    GatewayCluster.objects.select_for_update().filter(id=cluster.id).first()
    changed_shards: dict[str, dict[int, list[dict[str, Any]]]] = {}
    if sections is not None:
        latest = ConfigSnapshot.objects.filter(cluster=cluster).order_by("-version").first()
        if latest is None:
            sections = None  # the first version is compiled whole
        else:  # and a section added to the protocol since the latest one, with the rest
            sections = {*sections, *(key for key in _compilers if key not in latest.sections)}
            for key, ids in (changed_ids or {}).items():
                # Only shards the latest version has: one stored whole is compiled whole.
                if key in sections and key in _shard_compilers and key in latest.shards:
                    sections.discard(key)
                    changed_shards[key] = {
                        index: _shard_compilers[key](cluster, index * SHARD_WIDTH, (index + 1) * SHARD_WIDTH)
                        for index in {shard_of(entity_id) for entity_id in ids}
                    }
    return store_snapshot(
        cluster,
        compile_snapshot(cluster, sections),
        author=author,
        reason=reason,
        changed_shards=changed_shards,
    )


def publish_to_every_cluster(*, author: str, reason: str, sections: Iterable[str]) -> None:
    """Publish the named sections to every cluster of the current organization (billing's quota
    applies to all of them)."""
    for cluster in GatewayCluster.objects.order_by("id"):
        publish(cluster, author=author, reason=reason, sections=sections)


@transaction.atomic
def roll_back(author: Author, cluster: GatewayCluster, snapshot: ConfigSnapshot) -> ConfigSnapshot:
    """Restore what `snapshot` holds (every registered app restores its own rows), then publish:
    the new version's document equals the old one's; all of it in one transaction."""
    document = snapshot_document(snapshot)
    if document.get("cluster_id") != cluster.id:
        raise InvalidInput.field("version", "That snapshot belongs to another cluster.")
    for restore in _restorers:
        restore(cluster, document, author)
    record_audit(
        author.actor,
        author.organization,
        "snapshot.rollback",
        snapshot,
        after={"to_version": snapshot.version},
    )
    return publish(cluster, author=author.label, reason=f"rollback to version {snapshot.version}")
