"""make bench-fleet: thousands of gateways on one control plane.

The control plane runs as `make run` runs it (`python -m saas.launcher run`: uvicorn with
BENCH_WEB_WORKERS web processes, default 2; one Celery worker of concurrency 2, beat, one usage
consumer), on its own database with 1,000 organizations and clusters of 1 to 10 gateways.
Simulated agents (tests/perf/fleet_agents.py, BENCH_AGENT_PROCESSES processes, by default one per 3,000 agents) connect
in steps (BENCH_FLEET_STEPS, default 1000,5000,10000). At each step, with all of them connected:

- for REPORT_WINDOW_S: reports (a heartbeat and a usage batch in one request) accepted per
  second and their p99 (with BENCH_FLEET_REPORTS=0, heartbeats and usage batches apart, as agents
  sent them before reports);
- PUBLISHES route changes to random clusters, one every 0.5 s, each timed from the service's
  return (committed and announced) to the last agent of that cluster holding the new version;
- CPU (share of one core) and RSS of every control-plane process, PostgreSQL and Redis, and of
  the generator; connections open.

The file descriptor limit is raised to FD_LIMIT for the run (every process it starts inherits
it): each agent holds two connections, and each web process one per connection it serves.

The last line is one JSON object. Targets at 10,000 agents: 0 errors; propagation p50 <= 300 ms,
p99 <= 1 s; report p99 <= 200 ms; web RSS <= 50 MB per 1,000 agents."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.perf.bench_catalog import fresh_database  # noqa: E402
from tests.perf.bench_gateway import free_port, stop  # noqa: E402
from tests.perf.fleet_agents import run_agents  # noqa: E402

ORGANIZATIONS = int(os.environ.get("BENCH_ORGANIZATIONS", "1000"))
STEPS = [int(n) for n in os.environ.get("BENCH_FLEET_STEPS", "1000,5000,10000").split(",")]
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))
# Each agent holds two connections: a generator process keeps under 6,000 descriptors.
AGENT_PROCESSES = int(os.environ.get("BENCH_AGENT_PROCESSES", str(max(2, -(-2 * max(STEPS) // 6000)))))
REPORT_WINDOW_S = float(os.environ.get("BENCH_REPORT_WINDOW_S", "40"))
PUBLISHES = int(os.environ.get("BENCH_PUBLISHES", "40"))
FD_LIMIT = 200_000
# Each generator process connects from addresses of its own: a single source address has some
# 28,000 ephemeral ports towards one listening port.
SOURCES_PER_PROCESS = 4


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(hard, FD_LIMIT)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
    except (ValueError, OSError):  # not root: as high as the hard limit allows
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        wanted = hard
    return wanted


def provision(total_agents: int) -> tuple[list[dict[str, Any]], dict[int, tuple[Any, Any, Any]]]:
    """ORGANIZATIONS organizations, clusters of 1 to 10 gateways spread over them until there are
    gateways for `total_agents`; each cluster with an upstream, a service, a route and a token.
    Returns (agent specs, cluster id -> (organization, author, cluster))."""
    from django.db import transaction
    from django_tenants.utils import schema_context

    from saas.catalog import services as catalog
    from saas.gateways.models import GatewayCluster
    from saas.gateways.services import Author, create_cluster_token
    from tenants import services as tenant_services
    from tenants.audit import Actor
    from tenants.models import User

    rng = random.Random(27)
    owner = User.objects.create_user(email="fleet@example.com", password="fleet bench passphrase")
    actor = Actor(user=owner)
    organizations = [
        tenant_services.create_organization(actor, name=f"Fleet {i}", slug=f"fleet-{i}")
        for i in range(ORGANIZATIONS)
    ]
    specs: list[dict[str, Any]] = []
    clusters: dict[int, tuple[Any, Any, Any]] = {}
    index = 0
    while len(specs) < total_agents:
        organization = organizations[index % len(organizations)]
        author = Author(actor=actor, organization=organization)
        gateways = min(rng.randint(1, 10), total_agents - len(specs))
        with schema_context(organization.schema_name), transaction.atomic():
            cluster = GatewayCluster.objects.create(name=f"c{index}")
            # One publish per cluster, the route's: the first snapshot holds all three.
            upstream = {"name": "app", "targets": [{"host": "10.0.0.1", "port": 8080}]}
            catalog.save_upstream(author, cluster, upstream, publish=False)
            catalog.save_service(author, cluster, {"name": "app", "upstream": "app"}, publish=False)
            route = catalog.save_route(
                author, cluster, {"name": "r", "service": "app", "paths": [{"value": "/v0"}]}
            )
            _, token = create_cluster_token(author, cluster, name="fleet")
        clusters[cluster.id * 100_000 + organization.id] = (organization, author, cluster)
        for _ in range(gateways):
            specs.append(
                {
                    "token": token,
                    "cluster_id": cluster.id * 100_000 + organization.id,
                    "route_ids": [route.id],
                }
            )
        index += 1
    # Steps take whole clusters in a random order, so each step mixes organizations.
    return specs, clusters


def control_plane_processes(launcher: psutil.Process) -> dict[str, psutil.Process]:
    """Every process of the control plane by role, and PostgreSQL's and Redis's servers."""
    found: dict[str, psutil.Process] = {}
    web_workers: set[int] = set()
    for process in launcher.children(recursive=True):
        try:
            line = " ".join(process.cmdline())
            children = process.children(recursive=True) if "uvicorn" in line else []
        except psutil.Error:
            continue
        if children:  # uvicorn's supervisor: its workers are spawned, their command lines do not say
            web_workers.update(child.pid for child in children)
            found[f"web-supervisor-{process.pid}"] = process
            continue
        if process.pid in web_workers:
            line = "uvicorn worker"
        role = (
            "web"
            if "uvicorn" in line
            else "celery-beat"
            if " beat" in line
            else "celery-worker"
            if "celery" in line
            else "usage-consumer"
            if "consume_usage" in line
            else None
        )
        if role:
            found[f"{role}-{process.pid}"] = process
    for role, url in (("postgres", os.environ["DATABASE_URL"]), ("redis", os.environ["REDIS_URL"])):
        server = _listening_on(urlparse(url).port or 0)
        for process in [server, *server.children(recursive=True)]:
            found[f"{role}-{process.pid}"] = process
    return found


def _listening_on(port: int) -> psutil.Process:
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
            return psutil.Process(connection.pid)
    raise RuntimeError(f"nothing listens on port {port}")


def resources(
    processes: dict[str, psutil.Process], before: dict[str, float], seconds: float
) -> dict[str, Any]:
    """CPU as a share of one core over `seconds` and RSS, per process; PostgreSQL's backends
    summed (RSS of its processes double-counts shared buffers, so its figure is the largest)."""
    figures: dict[str, dict[str, float]] = {}
    for key, process in processes.items():
        try:
            times = process.cpu_times()
            cpu = times.user + times.system
            rss = process.memory_info().rss / 2**20
        except psutil.Error:
            continue
        role = key.rsplit("-", 1)[0]
        share = (cpu - before.get(key, cpu)) / seconds
        entry = figures.setdefault(role if role == "postgres" else key, {"cpu": 0.0, "rss_mb": 0.0})
        entry["cpu"] = round(entry["cpu"] + share, 3)
        entry["rss_mb"] = round(max(entry["rss_mb"], rss) if role == "postgres" else rss, 1)
    return figures


def web_rss_mb(figures: dict[str, Any]) -> float:
    """The web workers' RSS summed (uvicorn's supervisor left out: it serves nothing)."""
    return float(
        sum(v["rss_mb"] for k, v in figures.items() if k.startswith("web-") and "supervisor" not in k)
    )


def cpu_now(processes: dict[str, psutil.Process]) -> dict[str, float]:
    now = {}
    for key, process in processes.items():
        try:
            times = process.cpu_times()
            now[key] = times.user + times.system
        except psutil.Error:
            pass
    return now


def publish(cluster: tuple[Any, Any, Any], n: int) -> tuple[int, float]:
    """Change the cluster's route: (the new version, when the service returned, committed and
    announced)."""
    from django_tenants.utils import schema_context

    from saas.catalog import services as catalog
    from saas.catalog.models import Route
    from saas.gateways.models import ConfigSnapshot

    organization, author, gateway_cluster = cluster
    with schema_context(organization.schema_name):
        route = Route.objects.get(cluster=gateway_cluster, name="r")
        catalog.save_route(
            author, gateway_cluster, {"name": "r", "service": "app", "paths": [{"value": f"/v{n}"}]}, route
        )
        returned = time.time()
        latest = ConfigSnapshot.objects.filter(cluster=gateway_cluster).order_by("-version")
        return latest.values_list("version", flat=True)[0], returned


def main() -> None:
    fd_limit = raise_fd_limit()
    fresh_database("bench_fleet")
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    port = free_port()
    env = {**os.environ, "SAAS_WEB_WORKERS": str(WEB_WORKERS)}
    launcher = subprocess.Popen(
        [sys.executable, "-m", "saas.launcher", "run", "--port", str(port), "--data-dir", str(work)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(work / "launcher.log", "wb"),  # noqa: SIM115 - open as long as the run
    )
    processes: list[subprocess.Popen[bytes]] = [launcher]
    pipes = []
    generators = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError("the control plane did not start; see " + str(work / "launcher.log"))

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")
        import django

        django.setup()
        from django.db import connections

        started = time.monotonic()
        specs, clusters = provision(max(STEPS))
        connections.close_all()
        provision_s = time.monotonic() - started
        print(
            f"provisioned {ORGANIZATIONS} organizations, {len(clusters)} clusters in {provision_s:.0f} s",
            flush=True,
        )

        context = multiprocessing.get_context("spawn")
        for i in range(AGENT_PROCESSES):
            parent, child = context.Pipe()
            sources = [f"127.0.{i + 1}.{j + 1}" for j in range(SOURCES_PER_PROCESS)]
            generator = context.Process(
                target=run_agents, args=(child, "127.0.0.1", port, sources), daemon=True
            )
            generator.start()
            pipes.append(parent)
            generators.append(generator)
        monitored = control_plane_processes(psutil.Process(launcher.pid))
        idle_web_rss = web_rss_mb(resources(monitored, {}, 1.0))

        results = []
        connected = 0
        for step in STEPS:
            fresh = specs[connected:step]
            began = time.monotonic()
            for i, pipe in enumerate(pipes):
                pipe.send(("connect", fresh[i :: len(pipes)]))
            for pipe in pipes:
                pipe.recv()
            connected = step
            ramp_s = time.monotonic() - began
            print(f"{step} agents connected and holding their first snapshot in {ramp_s:.0f} s", flush=True)
            time.sleep(12)  # every agent has reported once since the ramp
            ramp_errors: dict[str, int] = {}
            for pipe in pipes:
                pipe.send(("reset", None))
                for what, count in pipe.recv().items():
                    ramp_errors[what] = ramp_errors.get(what, 0) + count
            before = cpu_now(monitored)
            window_started = time.monotonic()
            connected_clusters = sorted({spec["cluster_id"] for spec in specs[:step]})
            rng = random.Random(step)
            published: list[tuple[int, int, float]] = []
            for n in range(PUBLISHES):
                cluster_key = rng.choice(connected_clusters)
                version, at = publish(clusters[cluster_key], step * 1000 + n)
                published.append((cluster_key, version, at))
                time.sleep(REPORT_WINDOW_S / PUBLISHES)
            while time.monotonic() - window_started < REPORT_WINDOW_S:
                time.sleep(0.2)
            time.sleep(2)  # the last publish's stragglers
            window_s = time.monotonic() - window_started
            usage = resources(monitored, before, window_s)
            stats = []
            for pipe in pipes:
                pipe.send(("stats", None))
            for pipe in pipes:
                stats.append(pipe.recv())
            connections.close_all()
            received: dict[str, list[float]] = {}
            for part in stats:
                for key, times in part["received"].items():
                    received.setdefault(key, []).extend(times)
            gateways_of: dict[int, int] = {}
            for spec in specs[:step]:
                gateways_of[spec["cluster_id"]] = gateways_of.get(spec["cluster_id"], 0) + 1
            propagation, missing = [], 0
            for cluster_key, version, at in published:
                times = received.get(f"{cluster_key}:{version}", [])
                if len(times) < gateways_of[cluster_key]:
                    missing += gateways_of[cluster_key] - len(times)
                    continue
                propagation.append((max(times) - at) * 1000)
            heartbeats = [ms for part in stats for ms in part["heartbeat_ms"]]
            usages = [ms for part in stats for ms in part["usage_ms"]]
            reports = [ms for part in stats for ms in part["report_ms"]]
            errors: dict[str, int] = {}
            for part in stats:
                for what, count in part["errors"].items():
                    errors[what] = errors.get(what, 0) + count
            web_rss = web_rss_mb(usage)
            result = {
                "agents": step,
                "ramp_s": round(ramp_s, 1),
                "errors": sum(errors.values()) + missing,
                "error_kinds": errors | ({"publish not received": missing} if missing else {}),
                # Registrations refused, polls failed and the like while the step's agents connected.
                "ramp_errors": sum(ramp_errors.values()),
                "ramp_error_kinds": ramp_errors,
                "propagation_p50_ms": round(statistics.median(propagation), 1) if propagation else None,
                "propagation_p99_ms": round(percentile(propagation, 0.99), 1) if propagation else None,
                # A report carries a heartbeat and a batch.
                "heartbeats_per_s": round((len(heartbeats) + len(reports)) / window_s, 1),
                "usage_per_s": round((len(usages) + len(reports)) / window_s, 1),
                "reports_per_s": round(len(reports) / window_s, 1),
                "heartbeat_p99_ms": round(percentile(heartbeats, 0.99), 1) if heartbeats else None,
                "usage_p99_ms": round(percentile(usages, 0.99), 1) if usages else None,
                "report_p99_ms": round(percentile(heartbeats + usages + reports, 0.99), 1),
                "connections": sum(part["connections"] for part in stats),
                "web_rss_mb": round(web_rss, 1),
                "web_idle_rss_mb": round(idle_web_rss, 1),
                # What the connected agents add to the web processes.
                "web_rss_mb_per_1k_agents": round((web_rss - idle_web_rss) / (step / 1000), 1),
                "generator_cpu": round(sum(part["cpu_s"] for part in stats) / window_s, 3),
                "control_plane_cpu": round(sum(v["cpu"] for v in usage.values()), 3),
                "processes": usage,
            }
            # The control plane's cost per agent per minute: CPU seconds of all its processes.
            result["cpu_ms_per_agent_minute"] = round(result["control_plane_cpu"] * 60_000 / step, 2)
            results.append(result)
            print(json.dumps(result), flush=True)
        held = [r for r in results if r["errors"] == 0 and r["ramp_errors"] == 0]
        last = results[-1]
        print(
            json.dumps(
                {
                    "agents": max((r["agents"] for r in held), default=0),
                    "errors": last["errors"],
                    "ramp_errors": last["ramp_errors"],
                    "propagation_p50_ms": last["propagation_p50_ms"],
                    "propagation_p99_ms": last["propagation_p99_ms"],
                    "report_p99_ms": last["report_p99_ms"],
                    "web_rss_mb_per_1k_agents": last["web_rss_mb_per_1k_agents"],
                    "web_processes": WEB_WORKERS,
                    "generator_cpu": last["generator_cpu"],
                    "cpu_ms_per_agent_minute": last["cpu_ms_per_agent_minute"],
                    "fd_limit": fd_limit,
                    "steps": [{k: v for k, v in r.items() if k != "processes"} for r in results],
                }
            )
        )
    finally:
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.send(("stop", None))
        for generator in generators:
            generator.join(timeout=10)
            if generator.is_alive():
                generator.kill()
        stop(processes, work)


if __name__ == "__main__":
    main()
