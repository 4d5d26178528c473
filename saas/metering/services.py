"""Metering: count every call exactly once, and read the counts back for billing and analytics.

- `record_usage_batches` writes agent batches into their organization's schema: the batch ids
  and the rollups in one transaction, so a batch delivered twice (a retry, a replaying proxy, a
  dead letter replayed) changes nothing the second time. The intake queue's consumers call it
  (`intake_queue`).
- `billable_calls` is the figure billing invoices: every request the organization's gateways
  answered in the hours that start in a billing period, whatever the status (an hour straddling
  a period's start or end counts in the period it starts in, as at Stripe). It reads the hourly
  calls of the public schema, written with the rollups; `calls_in_periods` reads them for many
  organizations in one query.
- `traffic` is what the analytics endpoint shows for one cluster over a range."""

from __future__ import annotations

import calendar
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.db.models.functions import Trunc
from django_tenants.utils import get_public_schema_name

from core.errors import InvalidInput
from gateway_agent.protocol import LATENCY_BOUNDS_MS, STATUS_CODES, UsageBatch
from tenants.models import Organization

from .models import HourlyCalls, UsageRollup

# Only placeholders are formatted into these; every value is a query parameter.
# One organization's batches: their ids, and, only if every id was new (`written`), their rollups
# and the organization's calls per hour (public schema); answers the ids that were new. Rows come
# as JSON arrays (one parameter each, encoded in C and parsed by PostgreSQL, where arrays of
# columns cost psycopg more than the rest of the consumer), in the sorted order that keeps
# consumers deadlock-free. Tables are named with their schema: no `SET search_path`. Only
# placeholders are formatted in.
_RECORD = """
WITH new AS (
    INSERT INTO {batches} AS b
        (batch_id, cluster_id, instance_id, window_start, window_end, requests, recorded_at)
    SELECT x->>0, (x->>1)::bigint, x->>2, to_timestamp((x->>3)::float8), to_timestamp((x->>4)::float8),
        (x->>5)::bigint, now()
    FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(x, n)
    ORDER BY n
    ON CONFLICT (batch_id) DO NOTHING RETURNING b.batch_id
), written AS (
    SELECT count(*) = %s AS every_id FROM new
), rollups AS (
    INSERT INTO {rollups} AS r
        (cluster_id, minute, route_id, consumer, status_class, status_code, requests, bytes_in,
         bytes_out, latency_ms_buckets)
    SELECT (x->>0)::bigint, to_timestamp((x->>1)::float8), (x->>2)::bigint, x->>3, x->>4,
        (x->>5)::smallint, (x->>6)::bigint, (x->>7)::bigint, (x->>8)::bigint, (x->>9)::bigint[]
    FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(x, n)
    WHERE (SELECT every_id FROM written)
    ORDER BY n
    ON CONFLICT (cluster_id, minute, route_id, consumer, status_class, status_code) DO UPDATE SET
        requests = r.requests + EXCLUDED.requests,
        bytes_in = r.bytes_in + EXCLUDED.bytes_in,
        bytes_out = r.bytes_out + EXCLUDED.bytes_out,
        latency_ms_buckets = CASE WHEN cardinality(EXCLUDED.latency_ms_buckets) = 0
            THEN r.latency_ms_buckets
            ELSE ARRAY(
                SELECT coalesce(was, 0) + coalesce(added, 0)
                FROM unnest(r.latency_ms_buckets, EXCLUDED.latency_ms_buckets) AS t(was, added)
            ) END
    RETURNING 1
), hourly AS (
    INSERT INTO {hourly} AS h (schema_name, hour, calls)
    SELECT %s, to_timestamp((x->>0)::float8), (x->>1)::bigint
    FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(x, n)
    -- After the rollups (PostgreSQL runs the statements of a WITH that nothing reads last to
    -- first): batch ids, rollups, hourly calls, the order every consumer locks rows in.
    WHERE (SELECT every_id FROM written) AND (SELECT count(*) FROM rollups) >= 0
    ORDER BY n
    ON CONFLICT (schema_name, hour) DO UPDATE SET calls = h.calls + EXCLUDED.calls
    RETURNING 1
)
SELECT batch_id FROM new
"""
# Each (schema, start, end), in order, with the calls of the hours starting in [start, end).
_CALLS_IN_PERIODS = """
SELECT p.n, coalesce(sum(h.calls), 0)::bigint
FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) WITH ORDINALITY AS p(schema_name, starts, ends, n)
LEFT JOIN metering_hourlycalls h
    ON h.schema_name = p.schema_name AND h.hour >= p.starts AND h.hour < p.ends
GROUP BY p.n
ORDER BY p.n
"""
# Upstream answers per route, time bucket (minute, hour or day) and latency bucket over a range,
# summed in the database.
_LATENCY = """
SELECT route_id, date_trunc(%s, minute AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS t, bucket,
    sum(answers)::bigint
FROM metering_usagerollup, unnest(latency_ms_buckets) WITH ORDINALITY AS h(answers, bucket)
WHERE cluster_id = %s AND minute >= %s AND minute < %s{filters}
GROUP BY route_id, t, bucket
"""
LATENCY_BUCKETS = len(LATENCY_BOUNDS_MS) + 1


Rollups = dict[tuple[int, int, int, str, str, int], list[int]]


def _batch_rows(batches: list[tuple[int, UsageBatch]]) -> list[tuple[str, int, str, float, float, int]]:
    """One row of `metering_usagebatch` per batch, sorted by batch id: concurrent consumers insert
    ids in one order and cannot deadlock."""
    return sorted(
        (
            batch.batch_id,
            cluster_id,
            batch.instance_id,
            batch.window_start,
            batch.window_end,
            sum(item.requests for item in batch.items),
        )
        for cluster_id, batch in batches
    )


def _rollups(batches: list[tuple[int, UsageBatch]], new: set[str]) -> Rollups:
    """The items of the batches whose ids are in `new`, summed per rollup row; a batch id twice
    in `batches` counts once."""
    new = set(new)
    totals: Rollups = defaultdict(lambda: [0] * (3 + LATENCY_BUCKETS))
    for cluster_id, batch in batches:
        if batch.batch_id not in new:
            continue
        new.discard(batch.batch_id)
        for item in batch.items:
            key = (
                cluster_id,
                item.minute - item.minute % 60,
                item.route_id,
                item.consumer,
                item.status_class,
                item.status_code or 0,
            )
            total = totals[key]
            total[0] += item.requests
            total[1] += item.bytes_in
            total[2] += item.bytes_out
            for index, answers in enumerate(item.latency_ms_buckets):
                total[3 + index] += answers
    return totals


def _record_parameters(
    schema_name: str, rows: list[tuple[str, int, str, float, float, int]], totals: Rollups
) -> list[Any]:
    """_RECORD's parameters: the batches' rows, then the rollups' and the hourly calls', each
    in sorted order (concurrent consumers lock rows in one order and cannot deadlock)."""
    rollups: list[list[Any]] = []
    hourly: dict[int, int] = defaultdict(int)
    for (cluster_id, minute, route_id, consumer, status_class, status_code), counts in sorted(totals.items()):
        latency = counts[3:]
        buckets = "{" + ",".join(map(str, latency)) + "}" if any(latency) else "{}"
        rollups.append(
            [cluster_id, minute, route_id, consumer, status_class, status_code, *counts[:3], buckets]
        )
        hourly[minute - minute % 3600] += counts[0]
    hours = [[hour, hourly[hour]] for hour in sorted(hourly)]
    return [
        json.dumps(rows),
        len({row[0] for row in rows}),
        json.dumps(rollups),
        schema_name,
        json.dumps(hours),
    ]


def _table(schema_name: str, table: str) -> str:
    return f"{connection.ops.quote_name(schema_name)}.{connection.ops.quote_name(table)}"


def record_usage_batches(schema_name: str, batches: list[tuple[int, UsageBatch]]) -> int:
    """Count the batches of one organization (as (cluster id, batch)) in one transaction, each
    once: the ids already recorded are skipped, the rest recorded with their rollups. Returns how
    many were new."""
    with transaction.atomic(savepoint=False):
        [(query, new)] = _record({schema_name: batches})
        if len(new) < len({batch.batch_id for _, batch in batches}) and (totals := _rollups(batches, new)):
            # Some were recorded before (a retry): the statement wrote no rollups; these are the
            # new ones', written with the same statement, given no batch rows and expecting none.
            with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
                cursor.execute(query, _record_parameters(schema_name, [], totals), prepare=False)
    return len(new)


class RecordedBefore(Exception):
    """Some batches were recorded before: `record_usage_of_organizations` wrote no rollups for
    their organization, and writing them now would lock rows out of the consumers' one order."""


def record_usage_of_organizations(by_schema: dict[str, list[tuple[int, UsageBatch]]]) -> int:
    """What `record_usage_batches` does, for many organizations at once: one statement each, all
    sent in one round trip (the intake queue's consumer takes batches of hundreds of
    organizations at once, one batch each, mostly); how many batches were counted. Call it in a
    transaction: it raises on an error, and RecordedBefore when some batch was recorded before
    (a retry): roll back, and record organization by organization."""
    # Outside a transaction, RecordedBefore would leave batch ids committed without rollups.
    assert connection.in_atomic_block, "record_usage_of_organizations runs in a transaction"
    counted = 0
    for (_, new), schema_name in zip(_record(by_schema), sorted(by_schema), strict=True):
        if len(new) < len({batch.batch_id for _, batch in by_schema[schema_name]}):
            raise RecordedBefore(schema_name)
        counted += len(new)
    return counted


def _record(by_schema: dict[str, list[tuple[int, UsageBatch]]]) -> list[tuple[str, set[str]]]:
    """Each organization's _RECORD statement, sent in one round trip in the order of their
    schemas (every consumer's: they lock rows in one order); each statement and the batch ids
    that were new, in that order."""
    public = get_public_schema_name()
    sent: list[tuple[str, psycopg.Cursor[Any]]] = []
    connection.ensure_connection()
    raw = connection.connection
    with connection.wrap_database_errors:
        with raw.pipeline():
            for schema_name in sorted(by_schema):
                batches = by_schema[schema_name]
                rows = _batch_rows(batches)
                query = _RECORD.format(
                    batches=_table(schema_name, "metering_usagebatch"),
                    rollups=_table(schema_name, "metering_usagerollup"),
                    hourly=_table(public, "metering_hourlycalls"),
                )
                totals = _rollups(batches, {row[0] for row in rows})
                cursor = psycopg.Cursor(raw)
                # Server-side binding, not prepared: a pooler may sit in between.
                cursor.execute(query, _record_parameters(schema_name, rows, totals), prepare=False)
                sent.append((query, cursor))
        answered = []
        for query, cursor in sent:
            with cursor:
                answered.append((query, {batch_id for (batch_id,) in cursor.fetchall()}))
    return answered


@dataclass(frozen=True)
class BillingPeriod:
    """A calendar month, UTC: [start, end)."""

    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        return self.start.strftime("%Y-%m")

    @classmethod
    def containing(cls, moment: datetime) -> BillingPeriod:
        start = moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        days = calendar.monthrange(start.year, start.month)[1]
        return cls(start, start + timedelta(days=days))

    @classmethod
    def parse(cls, label: str) -> BillingPeriod:
        try:
            start = datetime.strptime(label, "%Y-%m").replace(tzinfo=UTC)
        except ValueError:
            raise InvalidInput.field("period", "A month as YYYY-MM, for example 2026-11.") from None
        return cls.containing(start)


def _hour_on_or_after(moment: datetime) -> datetime:
    floor = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(hours=1)


def calls_in_periods(periods: list[tuple[str, BillingPeriod]]) -> list[int]:
    """The calls of organizations (by schema name) in periods, in their order: those of the hours
    that start in each. One query, whatever the number of organizations and periods."""
    if not periods:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            _CALLS_IN_PERIODS,
            [
                [schema_name for schema_name, _ in periods],
                [_hour_on_or_after(period.start) for _, period in periods],
                [_hour_on_or_after(period.end) for _, period in periods],
            ],
        )
        return [int(calls) for _, calls in cursor.fetchall()]


def billable_calls(organization: Organization, period: BillingPeriod) -> int:
    """Every request the organization's gateways answered in the hours that start in `period`."""
    return calls_in_periods([(organization.schema_name, period)])[0]


def billable_calls_by(
    unit: Literal["hour", "day"], organization: Organization, start: datetime, end: datetime
) -> dict[datetime, int]:
    """The organization's calls per UTC hour or day (keyed by its start), of the hours that start
    in [start, end); those without calls left out."""
    rows = (
        HourlyCalls.objects.filter(
            schema_name=organization.schema_name,
            hour__gte=_hour_on_or_after(start),
            hour__lt=_hour_on_or_after(end),
        )
        .annotate(at=Trunc("hour", unit, tzinfo=UTC))
        .values("at")
        .annotate(calls=Sum("calls"))
    )
    return {row["at"]: int(row["calls"]) for row in rows if row["calls"]}


def requests_by_minute(
    start: datetime, end: datetime, cluster_id: int | None = None
) -> dict[datetime, dict[str, int]]:
    """Requests per UTC minute and status class in [start, end), of one cluster or all of the
    current organization's; minutes without requests left out."""
    rows = UsageRollup.objects.filter(minute__gte=start, minute__lt=end)
    if cluster_id is not None:
        rows = rows.filter(cluster_id=cluster_id)
    per_minute: dict[datetime, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows.values("minute", "status_class").annotate(requests=Sum("requests")):
        per_minute[row["minute"]][row["status_class"]] += int(row["requests"])
    return per_minute


def requests_by_route(
    start: datetime, end: datetime, cluster_id: int | None = None
) -> dict[tuple[int, int], dict[str, int]]:
    """Requests per (cluster id, route id) in [start, end): in all (`requests`) and per status
    class. Route 0: what matched no route."""
    rows = UsageRollup.objects.filter(minute__gte=start, minute__lt=end)
    if cluster_id is not None:
        rows = rows.filter(cluster_id=cluster_id)
    routes: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows.values("cluster_id", "route_id", "status_class").annotate(requests=Sum("requests")):
        counts = routes[(row["cluster_id"], row["route_id"])]
        counts["requests"] += int(row["requests"])
        counts[row["status_class"]] += int(row["requests"])
    return routes


def consumer_calls_by_day(
    consumers: dict[int, list[str]], start: datetime, end: datetime
) -> list[tuple[datetime, int, int, str, str, int]]:
    """Calls of some consumers (cluster id -> usernames) in the current organization, per UTC
    day in [start, end): (day, cluster id, route id, consumer, status class, calls), from the
    same rollups billing counts."""
    if not consumers:
        return []
    who = Q()
    for cluster_id, names in consumers.items():
        who |= Q(cluster_id=cluster_id, consumer__in=names)
    rows = (
        UsageRollup.objects.filter(who, minute__gte=start, minute__lt=end)
        .annotate(day=Trunc("minute", "day", tzinfo=UTC))
        .values("day", "cluster_id", "route_id", "consumer", "status_class")
        .annotate(calls=Sum("requests"))
        .order_by("day", "cluster_id", "route_id", "consumer", "status_class")
    )
    return [
        (r["day"], r["cluster_id"], r["route_id"], r["consumer"], r["status_class"], int(r["calls"]))
        for r in rows
    ]


BUCKETS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
RANGES = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
MAX_POINTS = 2000
TOP = 10


def status_label(status_class: str, status_code: int) -> str:
    """How a rollup's status reads: its code, or its class for the class's other codes."""
    return str(status_code) if status_code else status_class


def _status_filter(status: str) -> dict[str, Any]:
    """The rollup filter for `status`: a class (`4xx`: every code of it) or a code (`429`)."""
    if re.fullmatch(r"[1-5]xx", status):
        return {"status_class": status}
    if re.fullmatch(r"[1-5][0-9][0-9]", status):
        if int(status) not in STATUS_CODES:
            raise InvalidInput.field(
                "status",
                f"{status} is counted with its class ({status[0]}xx); codes counted one by one: "
                + ", ".join(map(str, STATUS_CODES))
                + ".",
            )
        return {"status_code": int(status)}
    raise InvalidInput.field("status", "A status code such as 429, or a class such as 4xx.")


def _quiet_point(t: datetime) -> dict[str, Any]:
    """A point of the traffic series before any request is added to it."""
    return {"t": t, "requests": 0, "by_status": {}, "by_code": {}, "bytes_in": 0, "bytes_out": 0}


def traffic(
    cluster_id: int,
    start: datetime,
    end: datetime,
    bucket: str,
    *,
    route_id: int | None = None,
    consumer: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    """Requests over time by status class and code with bytes and latency percentiles, and the
    busiest routes, consumers and statuses, for one cluster in [start, end); of one route
    (`route_id`, 0: requests that matched none), one consumer (`consumer`, "": anonymous) and one
    status (`status`: a code or a class) when given. Call inside the organization's schema."""
    if bucket not in BUCKETS:
        raise InvalidInput.field("bucket", f"One of: {', '.join(BUCKETS)}.")
    if end <= start:
        raise InvalidInput.field("to", "Must be after from.")
    if (end - start) / BUCKETS[bucket] > MAX_POINTS:
        raise InvalidInput.field(
            "bucket", f"Too many {bucket}s in this range (at most {MAX_POINTS}); pick a larger bucket."
        )
    rows = UsageRollup.objects.filter(cluster_id=cluster_id, minute__gte=start, minute__lt=end)
    filters = ""
    arguments: list[Any] = [cluster_id, start, end]
    if route_id is not None:
        rows = rows.filter(route_id=route_id)
        filters, arguments = filters + " AND route_id = %s", [*arguments, route_id]
    if consumer is not None:
        rows = rows.filter(consumer=consumer)
        filters, arguments = filters + " AND consumer = %s", [*arguments, consumer]
    if status is not None:
        # Not the latencies: an answer's latency is kept with its route and consumer, not with
        # its status (UsageItem), so they stay those of every answer.
        rows = rows.filter(**_status_filter(status))
    series: dict[datetime, dict[str, Any]] = {}
    for row in (
        rows.annotate(t=Trunc("minute", bucket, tzinfo=UTC))
        .values("t", "status_class", "status_code")
        .annotate(requests=Sum("requests"), bytes_in=Sum("bytes_in"), bytes_out=Sum("bytes_out"))
        .order_by("t")
    ):
        point = series.setdefault(row["t"], _quiet_point(row["t"]))
        point["requests"] += row["requests"]
        by_status = point["by_status"]
        by_status[row["status_class"]] = by_status.get(row["status_class"], 0) + row["requests"]
        point["by_code"][status_label(row["status_class"], row["status_code"])] = row["requests"]
        point["bytes_in"] += row["bytes_in"]
        point["bytes_out"] += row["bytes_out"]

    def top(*fields: str) -> list[dict[str, Any]]:
        return [
            {**{field: row[field] for field in fields}, "requests": row["requests"]}
            for row in rows.values(*fields)
            .annotate(requests=Sum("requests"))
            .order_by("-requests", *fields)[:TOP]
        ]

    totals = rows.aggregate(requests=Sum("requests"), bytes_in=Sum("bytes_in"), bytes_out=Sum("bytes_out"))
    histograms: dict[int, list[int]] = defaultdict(lambda: [0] * LATENCY_BUCKETS)
    over_time: dict[datetime, list[int]] = defaultdict(lambda: [0] * LATENCY_BUCKETS)
    with connection.cursor() as cursor:
        cursor.execute(_LATENCY.format(filters=filters), [bucket, *arguments])
        for answered_route, t, position, answers in cursor.fetchall():
            if 1 <= position <= LATENCY_BUCKETS:
                histograms[answered_route][position - 1] += int(answers)
                over_time[t][position - 1] += int(answers)
    for t, histogram in over_time.items():
        # A bucket left with no request of the status asked for keeps its latencies.
        series.setdefault(t, _quiet_point(t))["latency"] = latency_percentiles(histogram)
    return {
        "from": start,
        "to": end,
        "bucket": bucket,
        "totals": {key: int(value or 0) for key, value in totals.items()},
        "series": [series[t] for t in sorted(series)],
        "top_routes": top("route_id"),
        "top_consumers": top("consumer"),
        "top_statuses": [
            {"status": status_label(row["status_class"], row["status_code"]), "requests": row["requests"]}
            for row in top("status_class", "status_code")
        ],
        "status_codes": list(STATUS_CODES),
        "latency_by_route": [
            {"route_id": route_id, **latency_percentiles(histogram)}
            for route_id, histogram in sorted(histograms.items())
        ],
    }


def latency_percentiles(histogram: list[int]) -> dict[str, Any]:
    """p50, p95 and p99 from an exact bucket histogram, each as the upper bound (ms) of the
    bucket it falls in: the true value lies between the bucket's bounds (None: over the last)."""
    answers = sum(histogram)
    result: dict[str, Any] = {"answers": answers}
    for name, quantile in (("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        result[name] = None
        seen = 0
        for index, count in enumerate(histogram):
            seen += count
            if answers and seen >= quantile * answers:
                result[name] = LATENCY_BOUNDS_MS[index] if index < len(LATENCY_BOUNDS_MS) else None
                break
    return result
