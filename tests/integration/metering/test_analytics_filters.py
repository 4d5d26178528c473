"""Traffic analytics narrowed to one route, one consumer or one status (the console's filters):
every figure (totals, series, top lists, latency) counts only the matching requests; statuses by
code, latency percentiles over time; bad filters are a 400 naming the parameter."""

import pytest

from saas.metering.intake_queue import UsageConsumer
from tenants.roles import Role

from .usage import NOW
from .usage import batch as _batch
from .usage import post as _post
from .usage import token as _token

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.time_machine(NOW, tick=True),
]

WINDOW = "analytics/?from=2026-11-26T10:00:00Z&to=2026-11-26T12:00:00Z&bucket=hour"


def _record(cw) -> None:
    body = _batch(
        ("2026-11-26T10:00:00", 1, "app", "2xx", 40),
        ("2026-11-26T10:00:00", 1, "app", "5xx", 1),
        ("2026-11-26T10:01:00", 2, "", "4xx", 9),
        ("2026-11-26T11:30:00", 2, "web", "2xx", 50),
        ("2026-11-26T11:31:00", 0, "", "4xx", 3),
    )
    body["items"][0]["latency_ms_buckets"] = [0, 0, 0, 40]
    body["items"][3]["latency_ms_buckets"] = [0, 50]
    assert _post(_token(cw), body).status_code == 202
    UsageConsumer("filters").drain()


def _get(cw, query: str = ""):
    return cw.client(Role.VIEWER).get(cw.url(WINDOW + query))


def test_traffic_of_one_consumer_counts_only_its_requests(cw):
    _record(cw)
    everything = _get(cw).json()
    assert everything["totals"]["requests"] == 103

    app = _get(cw, "&consumer=app").json()
    assert app["totals"] == {"requests": 41, "bytes_in": 4_100, "bytes_out": 41_000}
    assert [(p["requests"], p["by_status"]) for p in app["series"]] == [(41, {"2xx": 40, "5xx": 1})]
    assert app["top_consumers"] == [{"consumer": "app", "requests": 41}]
    assert app["top_routes"] == [{"route_id": 1, "requests": 41}]
    assert [row["route_id"] for row in app["latency_by_route"]] == [1]

    # An empty consumer: the anonymous requests (no authentication, or none passed).
    anonymous = _get(cw, "&consumer=").json()
    assert anonymous["totals"]["requests"] == 12
    assert anonymous["top_consumers"] == [{"consumer": "", "requests": 12}]
    assert _get(cw, "&consumer=nobody").json()["totals"]["requests"] == 0


def test_traffic_of_one_route_and_of_unmatched_requests(cw):
    _record(cw)
    route = _get(cw, "&route_id=2").json()
    assert route["totals"]["requests"] == 59
    assert route["top_routes"] == [{"route_id": 2, "requests": 59}]
    assert {row["consumer"] for row in route["top_consumers"]} == {"web", ""}
    assert [row["route_id"] for row in route["latency_by_route"]] == [2]

    both = _get(cw, "&route_id=2&consumer=web").json()
    assert both["totals"]["requests"] == 50
    assert [(p["requests"], p["by_status"]) for p in both["series"]] == [(50, {"2xx": 50})]

    unmatched = _get(cw, "&route_id=0").json()
    assert unmatched["totals"]["requests"] == 3
    assert unmatched["latency_by_route"] == []


def test_bad_filters_are_refused_naming_the_parameter(cw):
    for query, field in (
        ("&route_id=abc", "route_id"),
        ("&route_id=-1", "route_id"),
        ("&route_id=", "route_id"),
        ("&consumer=" + "x" * 101, "consumer"),
        ("&consumer=a%0Ab", "consumer"),
        ("&status=418", "status"),
        ("&status=4XX", "status"),
        ("&status=ok", "status"),
    ):
        answer = _get(cw, query)
        assert answer.status_code == 400, query
        assert field in answer.json()["errors"], (query, answer.json())


def test_traffic_by_status_code_tells_401_404_and_429_apart(cw):
    """The gateway counts 401, 404, 429 one by one and a 418 only as 4xx: the series and top
    statuses say so, and a code or a class filters every figure; latency percentiles per hour."""
    body = _batch(
        ("2026-11-26T10:00:00", 1, "app", "2xx", 40),
        ("2026-11-26T10:00:00", 1, "app", "4xx", 5),
        ("2026-11-26T10:00:00", 1, "", "4xx", 7),
        ("2026-11-26T11:10:00", 1, "app", "4xx", 2),
        ("2026-11-26T11:10:00", 1, "app", "4xx", 1),
        ("2026-11-26T11:10:00", 1, "app", "5xx", 3),
    )
    for index, code in ((1, 429), (2, 401), (3, 404), (5, 503)):
        body["items"][index]["status_code"] = code
    body["items"][0]["latency_ms_buckets"] = [0, 0, 40]  # 10:00, all at most 5 ms
    body["items"][3]["latency_ms_buckets"] = [0, 0, 0, 0, 0, 0, 6]  # 11:10, at most 100 ms
    assert _post(_token(cw), body).status_code == 202
    UsageConsumer("statuses").drain()

    everything = _get(cw).json()
    assert [p["by_code"] for p in everything["series"]] == [
        {"2xx": 40, "429": 5, "401": 7},
        {"404": 2, "4xx": 1, "503": 3},
    ]
    assert [p["by_status"] for p in everything["series"]] == [{"2xx": 40, "4xx": 12}, {"4xx": 3, "5xx": 3}]
    assert everything["top_statuses"][:3] == [
        {"status": "2xx", "requests": 40},
        {"status": "401", "requests": 7},
        {"status": "429", "requests": 5},
    ]
    assert [(p["latency"]["p50_ms"], p["latency"]["p99_ms"]) for p in everything["series"]] == [
        (5, 5),
        (100, 100),
    ]
    assert 429 in everything["status_codes"] and 418 not in everything["status_codes"]

    limited = _get(cw, "&status=429").json()
    assert limited["totals"]["requests"] == 5
    # Latencies are every answer's, whatever its status: 11:10 had no 429 and keeps its point.
    assert [(p["requests"], p["latency"]["p50_ms"]) for p in limited["series"]] == [(5, 5), (0, 100)]
    assert limited["top_consumers"] == [{"consumer": "app", "requests": 5}]
    client_errors = _get(cw, "&status=4xx&consumer=app").json()
    assert client_errors["totals"]["requests"] == 8
    assert [p["by_code"] for p in client_errors["series"]] == [{"429": 5}, {"404": 2, "4xx": 1}]
