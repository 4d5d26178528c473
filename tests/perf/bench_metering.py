"""make bench-metering: the control plane's side of metering, with batches of 50 items.

1. accept: wrk POSTs batches to one web process (uvicorn, 1 worker) over 32 connections, no
   consumer running: batches accepted (202: committed to the intake queue, one INSERT each) per
   second.
2. consume: 5,000 distinct batches queued, then one consumer process drains them: batches
   written per second, from the first write to the last.
3. end to end: with the consumer running, batches posted one by one; for each, the time from
   the 202 to its rows being in the rollups. p99.
4. a fleet's usage: 5,000 batches of 4 items, one each from gateways of 200 organizations in
   turn (what `make bench-fleet`'s agents send), queued, then drained by one consumer: batches
   written per second, and the consumer's and PostgreSQL's CPU per batch.

The last line is one JSON object. Targets: accept >= 1,000/s, consume >= 2,000/s, p99 <= 2 s."""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.control_plane import start_control_plane  # noqa: E402
from tests.perf.bench_catalog import django_on_fresh_database  # noqa: E402
from tests.perf.bench_gateway import WRK, free_port, stop, wait_port  # noqa: E402

ITEMS = 50
CONSUME_BATCHES = int(os.environ.get("BENCH_BATCHES", "5000"))
ACCEPT_SECONDS = 8
END_TO_END_BATCHES = 200
FLEET_ORGANIZATIONS = int(os.environ.get("BENCH_METERING_ORGANIZATIONS", "200"))
FLEET_ITEMS = 4


def batch(now: int, count: int = ITEMS) -> bytes:
    items = [
        {
            "minute": now - now % 60,
            "route_id": i % 20 + 1,
            "consumer": f"c{i % 10}",
            "status_class": "2xx" if i % 7 else "4xx",
            "requests": 3,
            "bytes_in": 300,
            "bytes_out": 3000,
        }
        for i in range(count)
    ]
    body = {"batch_id": uuid.uuid4().hex, "instance_id": "bench", "window_start": now - 10, "window_end": now}
    return json.dumps({**body, "items": items}).encode()


def accept_rate(url: str, headers: dict[str, str], work: Path) -> float:
    """wrk POSTing one batch over 32 connections: batches accepted per second (all must be 202;
    the copies count once later, which is what a retrying agent does too)."""
    script = work / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(batch(int(time.time())).decode())}\n"
        + "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in headers.items())
    )
    output = subprocess.run(
        [WRK, "-t2", "-c32", f"-d{ACCEPT_SECONDS}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in output:
        raise RuntimeError(output)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """User and system CPU of every PostgreSQL process now running (the server and its
    backends): what the database spent, when read before and after with the same backends."""
    import psutil

    total = 0.0
    for process in psutil.process_iter(["name", "cpu_times"]):
        if process.info["name"] == "postgres" and process.info["cpu_times"] is not None:
            total += process.info["cpu_times"].user + process.info["cpu_times"].system
    return total


def start_consumer(name: str) -> tuple[subprocess.Popen[bytes], float]:
    """`manage.py consume_usage`, and when it said it had started (time.monotonic()): a drain is
    timed from there to the last batch counted, polled every 50 ms. (The spread of the batches'
    `recorded_at` no longer times it: a take of thousands of batches is one transaction, and
    they all have its start.)"""
    consumer = subprocess.Popen(
        [sys.executable, "manage.py", "consume_usage", "--name", name], cwd=ROOT, stdout=subprocess.PIPE
    )
    assert consumer.stdout is not None
    consumer.stdout.readline()  # "usage consumer NAME started"; it writes nothing else there
    return consumer, time.monotonic()


def fleet_consumption(user: Any) -> tuple[float, float, float]:
    """Step 4: batches written per second, and the consumer's and PostgreSQL's CPU
    milliseconds per batch."""
    from django.db.models import Sum
    from django_tenants.utils import schema_context

    from saas.gateways.models import GatewayCluster
    from saas.metering.intake_queue import queue_usage_batches
    from saas.metering.models import HourlyCalls
    from tenants import services as tenant_services
    from tenants.audit import Actor

    targets = []
    for n in range(FLEET_ORGANIZATIONS):
        org = tenant_services.create_organization(Actor(user=user), name=f"Fleet {n}", slug=f"fleet-{n}")
        with schema_context(org.schema_name):
            targets.append((org.schema_name, GatewayCluster.objects.create(name="production").id))
    now = int(time.time())
    rows = [(*targets[i % len(targets)], batch(now, FLEET_ITEMS).decode()) for i in range(CONSUME_BATCHES)]
    for start in range(0, len(rows), 200):
        queue_usage_batches(rows[start : start + 200])
    consumer, started = start_consumer("fleet")
    database_before = postgres_cpu_seconds()
    try:
        schemas = [schema for schema, _ in targets]
        expected = CONSUME_BATCHES * FLEET_ITEMS * 3  # requests: 3 an item
        total = HourlyCalls.objects.filter(schema_name__in=schemas)
        deadline = time.monotonic() + 600
        while (total.aggregate(calls=Sum("calls"))["calls"] or 0) < expected:
            if time.monotonic() > deadline:
                raise RuntimeError("the consumer did not drain the fleet's batches in 10 minutes")
            time.sleep(0.05)
        drained_s = time.monotonic() - started
        cpu = cpu_seconds(consumer.pid)
        database_cpu = postgres_cpu_seconds() - database_before
    finally:
        consumer.terminate()
        consumer.wait(timeout=30)
    return (
        CONSUME_BATCHES / drained_s,
        cpu * 1000 / CONSUME_BATCHES,
        database_cpu * 1000 / CONSUME_BATCHES,
    )


def main() -> None:
    django_on_fresh_database("bench_metering")
    from django.db import connection
    from django_tenants.utils import schema_context

    from saas.gateways.models import GatewayCluster
    from saas.gateways.services import Author, create_cluster_token
    from saas.metering.models import UsageBatch as RecordedBatch
    from tenants import services as tenant_services
    from tenants.audit import Actor
    from tenants.models import User

    user = User.objects.create_user(email="bench@example.com", password="a long passphrase")
    org = tenant_services.create_organization(Actor(user=user), name="Bench", slug="bench")
    with schema_context(org.schema_name):
        cluster = GatewayCluster.objects.create(name="production")
        _, token = create_cluster_token(Author(actor=Actor(user=user), organization=org), cluster, name="b")

    def empty_queue() -> None:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE metering_usageintake, metering_usagedeadletter")

    empty_queue()
    work = Path(tempfile.mkdtemp(prefix="bench-metering-"))
    processes: list[subprocess.Popen] = []
    try:
        port = free_port()
        processes.append(start_control_plane(port))
        wait_port(port, timeout=30)
        url = f"http://127.0.0.1:{port}/agent/v1/usage"
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        accept_rps = accept_rate(url, headers, work)
        # Consumption: distinct batches queued through intake, then one consumer drains them.
        empty_queue()
        now = int(time.time())
        bodies = [batch(now) for _ in range(CONSUME_BATCHES)]
        clients = [httpx.Client(headers=headers, timeout=30) for _ in range(8)]
        with ThreadPoolExecutor(8) as pool:
            queued = list(
                pool.map(
                    lambda i: clients[i % 8].post(url, content=bodies[i]).status_code, range(CONSUME_BATCHES)
                )
            )
        assert queued.count(202) == CONSUME_BATCHES
        consumer, started = start_consumer("bench")
        processes.append(consumer)
        with schema_context(org.schema_name):
            while RecordedBatch.objects.count() < CONSUME_BATCHES:
                time.sleep(0.05)
        consume_s = time.monotonic() - started

        client = httpx.Client(headers=headers, timeout=30)
        delays = []
        for _ in range(END_TO_END_BATCHES):
            body = batch(int(time.time()))
            batch_id = json.loads(body)["batch_id"]
            assert client.post(url, content=body).status_code == 202
            answered = time.monotonic()
            with schema_context(org.schema_name):
                while not RecordedBatch.objects.filter(batch_id=batch_id).exists():
                    time.sleep(0.002)
            delays.append(time.monotonic() - answered)
        delays.sort()
        # The fleet's batches are one consumer's to drain, not this one's too.
        consumer.terminate()
        consumer.wait(timeout=30)
        processes.remove(consumer)
        fleet_per_s, fleet_cpu_ms, fleet_database_ms = fleet_consumption(user)
        print(
            json.dumps(
                {
                    "accept_batches_per_s": round(accept_rps),
                    "consume_batches_per_s": round(CONSUME_BATCHES / consume_s),
                    "items_per_batch": ITEMS,
                    "end_to_end_p50_s": round(delays[len(delays) // 2], 3),
                    "end_to_end_p99_s": round(delays[int(len(delays) * 0.99) - 1], 3),
                    "fleet_organizations": FLEET_ORGANIZATIONS,
                    "fleet_consume_batches_per_s": round(fleet_per_s),
                    "fleet_consumer_cpu_ms_per_batch": round(fleet_cpu_ms, 2),
                    "fleet_postgres_cpu_ms_per_batch": round(fleet_database_ms, 2),
                }
            )
        )
    finally:
        stop(processes, work)


if __name__ == "__main__":
    main()
