"""Metering on the control plane: agents post usage batches (202 once queued in PostgreSQL),
consumers write them to the rollups once however often they arrive, and billing and analytics read
the same figures."""

import pytest

from saas.metering.intake_queue import UsageConsumer
from tenants.roles import Role

from .usage import NOW, queued
from .usage import batch as _batch
from .usage import billed as _billed
from .usage import post as _post
from .usage import token as _token

# Usage intake checks the token on the shared thread pool's own connections: what the tests
# write must be committed for it to see.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.time_machine(NOW, tick=True),
]


def _drain(name: str = "c1") -> int:
    return UsageConsumer(name).drain()


def test_a_batch_is_counted_once_however_often_it_arrives(cw):
    token = _token(cw)
    body = _batch(("2026-11-26T10:00:00", 1, "app", "2xx", 40), ("2026-11-26T10:01:00", 2, "", "4xx", 2))
    for _ in range(3):  # a retry and a replaying proxy deliver it again
        answer = _post(token, body)
        assert answer.status_code == 202 and answer.json() == {"batch_id": body["batch_id"]}
    assert queued() == 3
    assert _drain() == 3
    assert _billed(cw, "2026-11") == 42
    assert queued() == 0  # recorded and deleted in one transaction


def test_billing_periods_are_calendar_months_in_utc(cw):
    token = _token(cw)
    _post(
        token,
        _batch(("2026-10-31T23:59:00", 1, "app", "2xx", 5), ("2026-11-01T00:00:00", 1, "app", "2xx", 3)),
    )
    _drain()
    assert _billed(cw, "2026-10") == 5
    assert _billed(cw, "2026-11") == 3
    assert _billed(cw, "2026-12") == 0
    bad = cw.client(Role.BILLING).get(f"/api/v1/orgs/{cw.world.a.org.slug}/usage/?period=2026-13")
    assert bad.status_code == 400 and "period" in bad.json()["errors"]
    # Organization B's usage is its own.
    other = cw.world.b.client(Role.OWNER).get(f"/api/v1/orgs/{cw.world.b.org.slug}/usage/?period=2026-11")
    assert other.json()["billable_calls"] == 0


def test_analytics_show_the_billed_requests_by_time_status_route_and_consumer(cw):
    token = _token(cw)
    _post(
        token,
        _batch(
            ("2026-11-26T10:00:00", 1, "app", "2xx", 40),
            ("2026-11-26T10:00:00", 1, "app", "5xx", 1),
            ("2026-11-26T10:01:00", 2, "", "4xx", 9),
            ("2026-11-26T11:30:00", 2, "web", "2xx", 50),
        ),
    )
    _drain()
    url = cw.url("analytics/?from=2026-11-26T10:00:00Z&to=2026-11-26T12:00:00Z&bucket=hour")
    data = cw.client(Role.VIEWER).get(url).json()
    assert data["totals"] == {"requests": 100, "bytes_in": 10_000, "bytes_out": 100_000}
    assert [(p["requests"], p["by_status"]) for p in data["series"]] == [
        (50, {"2xx": 40, "5xx": 1, "4xx": 9}),
        (50, {"2xx": 50}),
    ]
    assert data["top_routes"] == [{"route_id": 2, "requests": 59}, {"route_id": 1, "requests": 41}]
    assert data["top_consumers"][0] == {"consumer": "web", "requests": 50}
    assert _billed(cw, "2026-11") == data["totals"]["requests"]
    assert data["latency_by_route"] == []  # no upstream answer carried a latency
    too_fine = cw.client(Role.VIEWER).get(cw.url("analytics/?range=30d&bucket=minute"))
    assert too_fine.status_code == 400 and "bucket" in too_fine.json()["errors"]
    assert cw.client(Role.VIEWER).get(cw.url("analytics/?range=2w")).status_code == 400
    assert cw.client(Role.VIEWER).get(cw.url("analytics/", cluster_id=999)).status_code == 404
    # Organization B's cluster (its own schema) saw none of it.
    other = cw.client(Role.VIEWER, side="b").get(cw.url("analytics/?range=30d", side="b")).json()
    assert other["totals"]["requests"] == 0


def test_bad_usage_batches_are_refused_whole(cw):
    token = _token(cw)
    assert _post("gct_1_wrong", _batch()).status_code == 401
    bad = _post(token, {**_batch(("2026-11-26T10:00:00", 1, "app", "2xx", 1)), "batch_id": "short"})
    assert bad.status_code == 400
    negative = _batch(("2026-11-26T10:00:00", 1, "app", "2xx", 1))
    negative["items"][0]["requests"] = -5
    refused = _post(token, negative)
    assert refused.status_code == 400 and "items.0.requests" in refused.json()["errors"], refused.json()
    assert _post(token, b"{not json").status_code == 400
    assert _post(token, b"x" * (5 * 1024 * 1024)).status_code == 413
    assert _post(token, _batch(), method="GET").status_code == 405
    assert queued() == 0


def test_latency_percentiles_per_route_come_from_exact_bucket_counts(cw):
    """Two batches for the same route and minute add their histograms bucket by bucket; the
    percentiles are the upper bounds of the buckets they fall in."""
    token = _token(cw)
    first = _batch(("2026-11-26T10:00:00", 1, "app", "2xx", 100))
    first["items"][0]["latency_ms_buckets"] = [0, 0, 0, 50, 40]  # 50 in (5, 10] ms, 40 in (10, 20]
    second = _batch(("2026-11-26T10:00:00", 1, "app", "2xx", 10))
    second["items"][0]["latency_ms_buckets"] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10]  # over 10 s
    for body in (first, second):
        assert _post(token, body).status_code == 202
    _drain()
    url = cw.url("analytics/?from=2026-11-26T10:00:00Z&to=2026-11-26T11:00:00Z&bucket=hour")
    data = cw.client(Role.VIEWER).get(url).json()
    assert data["latency_by_route"] == [
        {"route_id": 1, "answers": 100, "p50_ms": 10, "p95_ms": None, "p99_ms": None}
    ]
    too_long = _batch(("2026-11-26T10:00:00", 1, "app", "2xx", 1))
    too_long["items"][0]["latency_ms_buckets"] = [1] * 15
    answer = _post(token, too_long)
    assert answer.status_code == 400 and "latency_ms_buckets" in answer.text
