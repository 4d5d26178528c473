"""The shards of the consumers section the agent holds (docs/gateway.md, "Sharded snapshots").

Their texts are kept on disk by SHA-256, beside last_good.json, which names them without their
content: a restarted agent serves its last good snapshot from both. In memory the agent keeps,
for each shard of the snapshot serving, only what rendering needs of its consumers
(`ConsumerSet`): a change validates the shards it sends and nothing else."""

from __future__ import annotations

from pathlib import Path

from pydantic import TypeAdapter

from .consumer_set import ConsumerSet
from .durable import write_atomically
from .protocol import Consumer, VerifiedSnapshot

_CONSUMERS: TypeAdapter[list[Consumer]] = TypeAdapter(list[Consumer])


class ShardStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._sets: dict[str, ConsumerSet] = {}  # the serving snapshot's, by shard SHA-256
        self._built: dict[str, ConsumerSet] = {}  # those of the snapshot being applied

    def _path(self, sha256: str) -> Path:
        # The hash was checked to be 64 hex digits (protocol.verify_served): a plain file name.
        return self.folder / f"{sha256}.json"

    def read(self, sha256: str) -> bytes | None:
        try:
            return self._path(sha256).read_bytes()
        except OSError:
            return None

    def consumers_of(self, verified: VerifiedSnapshot) -> ConsumerSet | None:
        """The consumers of a sharded snapshot, from the shards it sent (validated here) and
        those the agent holds; None for a snapshot not sent in shards."""
        shas = verified.shards.get("consumers")
        if shas is None:
            return None
        self._built = {}
        parts = []
        for sha in shas:
            part = self._sets.get(sha) or self._built.get(sha)
            if part is None:
                text = verified.shard_texts.get(sha) or self.read(sha)
                if text is None:
                    raise ValueError(f"shard {sha[:12]} of the consumers is not held")
                part = self._built[sha] = ConsumerSet.of(_CONSUMERS.validate_json(text))
            parts.append(part)
        return ConsumerSet.merge(parts)

    def keep(self, verified: VerifiedSnapshot) -> None:
        """`verified` serves now: its shards are written to disk before last_good.json names
        them, and what only earlier snapshots named is forgotten."""
        wanted = {sha for shas in verified.shards.values() for sha in shas}
        if verified.shard_texts:
            self.folder.mkdir(parents=True, exist_ok=True)
        # Written even when a file of that name exists: it may be the damaged copy that made the
        # agent ask for every shard.
        for sha, text in verified.shard_texts.items():
            write_atomically(self._path(sha), text.encode())
        self._sets = {sha: part for sha, part in {**self._sets, **self._built}.items() if sha in wanted}
        self._built = {}

    def prune(self, verified: VerifiedSnapshot) -> None:
        """Delete the shard files last_good.json (now `verified`) no longer names."""
        wanted = {sha for shas in verified.shards.values() for sha in shas}
        for path in self.folder.glob("*.json"):
            if path.stem not in wanted:
                path.unlink(missing_ok=True)
