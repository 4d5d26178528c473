"""Usage batches the consumers could not record, for operators: what is there and why
(`manage.py usage_dead_letters list`, the `saas_usage_dead_letters` metric), back to the queue
once the cause is fixed (`replay`: a batch recorded meanwhile counts nothing twice, by its id), or
dropped (`purge`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Count, Min

from .models import UsageDeadLetter

# Moved, not copied: the dead letters and the queue rows change in one statement.
_REPLAY = """
WITH moved AS (DELETE FROM metering_usagedeadletter WHERE {where} RETURNING id, schema_name, cluster_id, batch)
INSERT INTO metering_usageintake (schema_name, cluster_id, batch)
SELECT schema_name, cluster_id, batch FROM moved ORDER BY id
"""


@dataclass(frozen=True)
class DeadLetterGroup:
    schema_name: str
    reason: str
    count: int
    oldest: datetime


def dead_letter_groups() -> list[DeadLetterGroup]:
    """The dead letters by organization and reason, most first."""
    rows = (
        UsageDeadLetter.objects.values("schema_name", "reason")
        .annotate(count=Count("id"), oldest=Min("failed_at"))
        .order_by("-count", "schema_name", "reason")
    )
    return [DeadLetterGroup(r["schema_name"], r["reason"], r["count"], r["oldest"]) for r in rows]


def dead_letters(limit: int = 100) -> list[UsageDeadLetter]:
    return list(UsageDeadLetter.objects.order_by("id")[:limit])


def replay_dead_letters(ids: list[int] | None) -> int:
    """Move the dead letters `ids` (None: all) back to the queue; how many moved."""
    with transaction.atomic(), connection.cursor() as cursor:
        if ids is None:
            cursor.execute(_REPLAY.format(where="true"))
        else:
            cursor.execute(_REPLAY.format(where="id = ANY(%s)"), [ids])
        return int(cursor.rowcount)


def purge_dead_letter(dead_letter_id: int) -> bool:
    """Drop one dead letter for good; whether there was one."""
    deleted, _ = UsageDeadLetter.objects.filter(id=dead_letter_id).delete()
    return bool(deleted)


def dead_letter_count() -> float:
    return float(UsageDeadLetter.objects.count())
