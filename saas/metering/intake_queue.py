"""The usage intake queue: PostgreSQL, from the agent's POST to the rollups.

- The intake inserts each accepted batch into `metering_usageintake` (public schema) and answers
  202 only once that row is committed: an agent deletes its spooled copy on the 202, so from then
  on the batch is in the system of record, never in a cache.
- Consumers take the oldest rows with `SELECT ... FOR UPDATE SKIP LOCKED`, record them in their
  organizations' schemas (`record_usage_batches`: batch ids and rollups) and delete them, all in
  one transaction. A consumer killed midway rolls all of it back: the rows are unlocked at once
  and another consumer takes them; nothing is lost or counted twice. Consumers never wait for
  each other's queue rows: each takes rows the others have not locked.
- Every organization's batches go in one round trip (`record_usage_of_organizations`). When
  that fails, or some batch among them was recorded before (a retry: its organization's rollups
  would then be written out of the lock order), it is rolled back and each organization is
  written under a savepoint, in order. One organization's failure stays its own: when it fails,
  each of its batches is written under its own savepoint. A batch that still cannot be written (its
  organization is gone, a value its rollups cannot hold) moves to `metering_usagedeadletter` with
  the reason, in the same transaction, and the others are recorded (see `dead_letters`).
- A consumer that took fewer batches than it could waits `gather_s` before it takes again, so
  each take holds a second or so of a fleet's batches, and an organization's are counted in one
  statement: a statement's fixed cost is most of its cost, whatever it writes. At 10,000
  gateways, takes every 0.1 s cost PostgreSQL 0.55 of a core, takes 1 s apart 0.24
  (docs/billing.md). A batch shows in the rollups that much later.
- When the queue is empty a consumer sleeps a short while (`idle_sleep_s`) and looks again.
  Polling, not LISTEN/NOTIFY: a NOTIFY in every intake transaction would serialize the intake's
  commits on PostgreSQL's notification queue lock, and one indexed query every tenth of a second
  per idle consumer costs nothing."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import psycopg
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django_tenants.utils import get_public_schema_name
from pydantic import ValidationError

from core.specs import invalid_input_from
from gateway_agent.protocol import UsageBatch
from tenants.models import Organization

from .bounds import batch_errors
from .models import UsageDeadLetter, UsageIntake
from .services import RecordedBefore, record_usage_batches, record_usage_of_organizations

logger = logging.getLogger(__name__)

# What the intake runs for the batches that arrived together (only placeholders are formatted
# in): one statement, committed when it returns (autocommit).
_QUEUE = "INSERT INTO {schema}.metering_usageintake (schema_name, cluster_id, batch) VALUES {rows}"
# Take the oldest rows no other consumer holds; deleted now, gone only if the transaction commits.
_TAKE = """
DELETE FROM metering_usageintake
WHERE id IN (SELECT id FROM metering_usageintake ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
RETURNING id, schema_name, cluster_id, batch, received_at
"""
_OLDEST_QUEUED_S = """
SELECT greatest(extract(epoch FROM now() - received_at), 0)::float8
FROM metering_usageintake ORDER BY id LIMIT 1
"""


def queue_usage_batches(batches: list[tuple[str, int, str]]) -> None:
    """Queue batches for the consumers, as (organization's schema, cluster id, the batch's JSON as
    received, already validated), committed when this returns: one INSERT, on the thread's
    connection, without django-tenants' `SET search_path` before it (the table is named with its
    schema)."""
    connection.ensure_connection()
    # A cursor binding on the server: the batches go as parameters, not quoted into the text of
    # the query by the client (as Django's cursors do), which cost half the insert's time.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            _QUEUE.format(
                schema=connection.ops.quote_name(get_public_schema_name()),
                rows=",".join(["(%s, %s, %s)"] * len(batches)),
            ),
            [value for row in batches for value in row],
            prepare=False,  # no prepared statement: a transaction-mode pooler may sit in between
        )


@dataclass(frozen=True)
class QueuedBatch:
    id: int
    schema_name: str
    cluster_id: int
    batch: str
    received_at: datetime


def _cannot_be_written(exc: BaseException) -> bool:
    """An error of this entry's own, not of the database: a connection lost, a deadlock or a
    serialization failure is retried, every entry with it."""
    return not isinstance(exc, OperationalError | InterfaceError)


def _reason(exc: BaseException) -> str:
    """What went wrong, as PostgreSQL said it when it did (`NumericValueOutOfRange: bigint out
    of range`), not as Django wrapped it."""
    if isinstance(exc, DatabaseError) and exc.__cause__ is not None:
        exc = exc.__cause__
    return f"{type(exc).__name__}: {exc}".strip()[:2000]


# A fleet of 10,000 gateways queues some 1,000 batches a second: a take holds a second of them,
# well within COUNT, and a batch is still counted within 2 s of its 202 (docs/billing.md).
COUNT = 10_000
GATHER_S = 1.0
IDLE_SLEEP_S = 0.1


class UsageConsumer:
    """One consumer; run as many as you like, anywhere. `run_once` records up to `count` of the
    oldest queued batches in one transaction; `run` takes again at once while the queue holds
    more, after `gather_s` when it held less, and after `idle_sleep_s` when it was empty."""

    def __init__(
        self, name: str, *, count: int = COUNT, idle_sleep_s: float = IDLE_SLEEP_S, gather_s: float = GATHER_S
    ) -> None:
        self.name = name
        self.count = count
        self.idle_sleep_s = idle_sleep_s
        self.gather_s = gather_s

    def run_once(self) -> int:
        """Take, record (or set aside as dead letters) and delete up to `count` queued batches;
        how many were taken (0: the queue is empty, or every row is another consumer's)."""
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(_TAKE, [self.count])
                taken = sorted((QueuedBatch(*row) for row in cursor.fetchall()), key=lambda e: e.id)
            if taken:
                dead = self._record(taken)
                UsageDeadLetter.objects.bulk_create(
                    UsageDeadLetter(
                        schema_name=entry.schema_name,
                        cluster_id=entry.cluster_id,
                        batch=entry.batch,
                        received_at=entry.received_at,
                        reason=" ".join(reason.split()),  # one line, for logs and listings
                    )
                    for entry, reason in sorted(dead, key=lambda dead_letter: dead_letter[0].id)
                )
        return len(taken)

    def _record(self, taken: list[QueuedBatch]) -> list[tuple[QueuedBatch, str]]:
        """Record the entries, each organization under a savepoint; the dead letters."""
        dead: list[tuple[QueuedBatch, str]] = []
        by_schema: dict[str, list[tuple[QueuedBatch, UsageBatch]]] = defaultdict(list)
        for entry in taken:
            try:
                batch = UsageBatch.model_validate_json(entry.batch)
            except ValidationError as exc:
                dead.append((entry, f"Not a usage batch: {invalid_input_from(exc).detail}"[:2000]))
                continue
            if errors := batch_errors(batch, now=None):
                problems = "; ".join(f"{field}: {messages[0]}" for field, messages in errors.items())
                dead.append((entry, f"Cannot be stored: {problems}"[:2000]))
                continue
            by_schema[entry.schema_name].append((entry, batch))
        existing = set(
            Organization.objects.filter(schema_name__in=list(by_schema)).values_list("schema_name", flat=True)
        )
        for schema_name in [name for name in by_schema if name not in existing]:
            dead += [
                (entry, f"Organization {schema_name} no longer exists.")
                for entry, _ in by_schema.pop(schema_name)
            ]
        try:
            # Every organization at once, in one round trip: what a consumer does nearly always.
            with transaction.atomic():
                record_usage_of_organizations(
                    {
                        name: [(e.cluster_id, batch) for e, batch in entries]
                        for name, entries in by_schema.items()
                    }
                )
            by_schema.clear()
        except RecordedBefore as exc:
            logger.info(
                "usage consumer %s: batches of %s sent again; organization by organization", self.name, exc
            )
        except Exception as exc:
            if not _cannot_be_written(exc):
                raise
            logger.warning(
                "usage consumer %s: a batch failed (%s); organization by organization", self.name, exc
            )
        # Organizations in one order in every consumer, and within one, batch ids and rollup rows
        # (record_usage_batches): consumers lock rows in one order and do not deadlock. (One
        # falling back to batch by batch might; PostgreSQL then rolls one back, retried whole.)
        for schema_name in sorted(by_schema):
            entries = by_schema[schema_name]
            try:
                with transaction.atomic():
                    record_usage_batches(schema_name, [(e.cluster_id, batch) for e, batch in entries])
                continue
            except Exception as exc:
                if not _cannot_be_written(exc):
                    raise
                logger.warning("usage of %s failed as a whole (%s); batch by batch", schema_name, exc)
            for entry, batch in sorted(entries, key=lambda pair: pair[1].batch_id):
                try:
                    with transaction.atomic():
                        record_usage_batches(schema_name, [(entry.cluster_id, batch)])
                except Exception as exc:
                    if not _cannot_be_written(exc):
                        raise
                    dead.append((entry, _reason(exc)))
        for entry, reason in dead:
            logger.error(
                "usage consumer %s: batch queued as %s for %s moved to the dead letters: %s",
                self.name,
                entry.id,
                entry.schema_name,
                reason,
            )
        return dead

    def drain(self) -> int:
        """Run until the queue has nothing left for this consumer; how many batches it took."""
        total = 0
        while taken := self.run_once():
            total += taken
        return total

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                taken = self.run_once()
                if not taken:
                    stop.wait(self.idle_sleep_s)
                elif taken < self.count:
                    stop.wait(self.gather_s)
            except Exception:  # the database away: what was taken is back in the queue; retry
                logger.exception("usage consumer %s failed; retrying", self.name)
                connection.close()
                stop.wait(1)


# --- gauges (core.metrics) ----------------------------------------------------------------------


def queue_depth() -> float:
    return float(UsageIntake.objects.count())


def queue_oldest_seconds() -> float:
    """How long the oldest queued batch has waited (0: none waits): how far consumers lag."""
    with connection.cursor() as cursor:
        cursor.execute(_OLDEST_QUEUED_S)
        row = cursor.fetchone()
    return float(row[0]) if row else 0.0
