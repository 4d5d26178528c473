"""make bench-catalog: a cluster of 1,000 routes, 200 services and 10,000 consumers (each with a
key-auth credential). Measures, in one run against the real database:

- list_routes_p95_ms: GET a page of 100 routes through the API (in-process client);
- create_route_p95_ms: POST a route through the API, including compiling and storing the
  cluster's next snapshot in the same transaction;
- compile_snapshot_ms: compiling the whole cluster into a snapshot document (median);
- then, in a second organization, a cluster of BENCH_CONSUMER_STEP (100,000) consumers:
  consumer_write_p95_ms_at_100k, a consumer created with its publish through the API, and
  agent_consumer_change_s_at_100k and agent_rss_mb_at_100k, an agent process with its HAProxy
  taking the change as it polls for it (in shards: verify, validate the changed shard, render,
  write, change HAProxy at runtime).

The last line is one JSON object."""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

ROUTES, SERVICES, CONSUMERS, UPSTREAMS = 1000, 200, 10_000, 20
SAMPLES = 30


def fresh_database(name: str = "bench_catalog") -> None:
    """Point DATABASE_URL at a new, empty database on the same server."""
    url = urlparse(os.environ["DATABASE_URL"])
    with psycopg.connect(urlunparse(url._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = urlunparse(url._replace(path=f"/{name}"))


def django_on_fresh_database(name: str) -> None:
    """A new database, Django set up on it, every schema migrated and the template made."""
    fresh_database(name)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate_schemas", "--noinput", verbosity=0)
    call_command("ensure_template_schema", verbosity=0)


def seed_cluster(
    routes: int = ROUTES,
    consumers: int = CONSUMERS,
    upstream_target: tuple[str, int] | None = None,
    *,
    name: str = "bench",
) -> tuple:
    """An organization `name` with one cluster of `routes` routes over 200 services and
    `consumers` consumers with a key-auth credential each (key `key-<consumer id>`), published."""
    from django.db import transaction
    from django_tenants.utils import schema_context

    from saas.catalog.key_material import key_hmac_hex
    from saas.catalog.models import Consumer, Credential, Route, Service, Upstream
    from saas.catalog.services import key_auth_secret
    from saas.gateways.models import GatewayCluster
    from saas.gateways.publishing import publish
    from tenants import services as tenant_services
    from tenants.audit import Actor
    from tenants.models import User

    host, port = upstream_target or ("10.0.0.1", 8080)
    user = User.objects.create_user(email=f"{name}@example.com", password="a long passphrase")
    org = tenant_services.create_organization(Actor(user=user), name=name.title(), slug=name)
    with schema_context(org.schema_name):
        cluster = GatewayCluster.objects.create(name="production")
        upstreams = Upstream.objects.bulk_create(
            Upstream(cluster=cluster, name=f"u{i}", targets=[{"host": host, "port": port, "weight": 100}])
            for i in range(UPSTREAMS)
        )
        services = Service.objects.bulk_create(
            Service(
                cluster=cluster, name=f"s{i}", upstream=upstreams[i % UPSTREAMS], plugins={"key-auth": {}}
            )
            for i in range(SERVICES)
        )
        Route.objects.bulk_create(
            Route(
                cluster=cluster,
                name=f"r{i}",
                service=services[i % SERVICES],
                paths=[{"type": "prefix", "value": f"/api/r{i}"}],
                methods=["GET"],
            )
            for i in range(routes)
        )
        created = Consumer.objects.bulk_create(
            [Consumer(cluster=cluster, username=f"c{i}", labels={"tier": "free"}) for i in range(consumers)],
            batch_size=5000,
        )
        secret = key_auth_secret(cluster)
        Credential.objects.bulk_create(
            [
                Credential(
                    cluster=cluster,
                    consumer=c,
                    type="key-auth",
                    key_sha256=key_hmac_hex(secret, f"key-{c.id}"),
                    key_scheme=Credential.KEY_HMAC_SHA256,
                    key_prefix="key-",
                )
                for c in created
            ],
            batch_size=5000,
        )
        with transaction.atomic():
            publish(cluster, author="bench", reason="seed")

    return user, org, cluster


# An agent holding the step's consumers takes one consumer change as it polls for it: in shards,
# only the changed one sent (docs/gateway.md, "Sharded snapshots"). It verifies, validates that
# shard, renders, writes and changes its HAProxy at runtime. RSS: the agent's own, after the
# change and at its peak (the first, whole snapshot), and HAProxy's.
_AGENT_TAKES_A_CHANGE = """
import json, sys, tempfile, time
from pathlib import Path
from gateway_agent.agent import Agent, AgentSettings
def rss_mb(pid="self", field="VmRSS"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
whole, change = Path(sys.argv[1]).read_bytes(), Path(sys.argv[2]).read_bytes()
agent = Agent(AgentSettings("http://127.0.0.1:9", "bench", Path(tempfile.mkdtemp()), http_port=int(sys.argv[3])))
try:
    agent.apply(whole)
    del whole
    start = time.perf_counter()
    agent.apply(change)
    seconds = time.perf_counter() - start
    master = int((agent.run_dir / "haproxy.pid").read_text().split()[0])
    haproxy_mb = rss_mb(master) + rss_mb(agent.haproxy.current_worker_pid())
    print(json.dumps({
        "seconds": seconds,
        "rss_mb": rss_mb(),
        # VmHWM, not ru_maxrss, which Linux carries over from the process that started this one.
        "peak_rss_mb": rss_mb(field="VmHWM"),
        "change_body_kb": len(change) / 1024,
        "haproxy_rss_mb": haproxy_mb,
    }))
finally:
    agent.haproxy.stop()
"""


def consumer_step(count: int, samples: int = 10) -> dict[str, float]:
    """A cluster of `count` consumers: a consumer write with its publish through the API, and an
    agent taking the change it made."""
    from django.conf import settings
    from django_tenants.utils import schema_context
    from rest_framework.test import APIClient

    from saas.gateways.agents import AgentContext, served_snapshot_json
    from saas.gateways.models import ConfigSnapshot
    from saas.launcher.services import free_port

    started = time.perf_counter()
    user, org, cluster = seed_cluster(routes=100, consumers=count, name=f"step{count}")
    print(f"[bench-catalog] {count} consumers seeded in {time.perf_counter() - started:.0f} s", flush=True)
    settings.ALLOWED_HOSTS = ["testserver"]
    client = APIClient()
    client.force_login(user)
    base = f"/api/v1/orgs/{org.slug}/clusters/{cluster.id}"
    times = []
    for i in range(samples):
        start = time.perf_counter()
        response = client.post(f"{base}/consumers/", {"username": f"step{i}"}, format="json")
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 201, response.content
    # The change the agent takes: the last consumer gets its key, as the portal gives an app one.
    keyed = client.post(
        f"{base}/consumers/{response.json()['id']}/credentials/",
        {"type": "key-auth", "key": "a-key-for-the-last-consumer"},
        format="json",
    )
    assert keyed.status_code == 201, keyed.content
    with schema_context(org.schema_name):
        latest = ConfigSnapshot.objects.filter(cluster=cluster).order_by("-version").first()
        assert latest is not None
    context = AgentContext(
        organization_id=org.id, schema_name=org.schema_name, cluster_id=cluster.id, token_id=0
    )
    previous = latest.version - 1
    bodies = [
        served_snapshot_json(context, previous, shards=True),
        served_snapshot_json(context, latest.version, shards=True, have=previous),
    ]
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index, served in enumerate(bodies):
            assert served is not None
            paths.append(Path(folder) / f"v{index}.json")
            paths[-1].write_bytes(served[1])
        taken = subprocess.run(
            [sys.executable, "-c", _AGENT_TAKES_A_CHANGE, *map(str, paths), str(free_port())],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
    agent = json.loads(taken.stdout.strip().splitlines()[-1])
    whole_mb = len(bodies[0][1]) / 2**20 if bodies[0] else 0.0
    print(
        f"[bench-catalog] at {count}: consumer write p95 {p95(times):.0f} ms; the agent takes one change "
        f"({agent['change_body_kb']:.0f} KB) in {agent['seconds']:.2f} s, RSS {agent['rss_mb']:.0f} MB "
        f"(peak {agent['peak_rss_mb']:.0f} MB, at the first whole snapshot of {whole_mb:.1f} MB); "
        f"HAProxy {agent['haproxy_rss_mb']:.0f} MB",
        flush=True,
    )
    label = f"at_{count // 1000}k"
    return {
        f"consumer_write_p95_ms_{label}": round(p95(times), 1),
        f"consumer_write_p50_ms_{label}": round(statistics.median(times), 1),
        f"agent_consumer_change_s_{label}": round(agent["seconds"], 2),
        f"agent_rss_mb_{label}": round(agent["rss_mb"], 1),
        f"agent_peak_rss_mb_{label}": round(agent["peak_rss_mb"], 1),
        f"served_body_mb_{label}": round(whole_mb, 1),
        f"change_body_kb_{label}": round(agent["change_body_kb"], 1),
        f"haproxy_rss_mb_{label}": round(agent["haproxy_rss_mb"], 1),
    }


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def main() -> None:
    django_on_fresh_database("bench_catalog")
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["testserver"]

    from django_tenants.utils import schema_context
    from rest_framework.test import APIClient

    from saas.gateways.publishing import compile_snapshot

    user, org, cluster = seed_cluster()
    with schema_context(org.schema_name):
        compile_times = []
        for _ in range(7):
            start = time.perf_counter()
            compile_snapshot(cluster)
            compile_times.append((time.perf_counter() - start) * 1000)

    from core.heap import freeze_startup_objects

    freeze_startup_objects()  # as a started web process does (saas.asgi)
    client = APIClient()
    client.force_login(user)
    base = f"/api/v1/orgs/{org.slug}/clusters/{cluster.id}"
    list_times = []
    for i in range(SAMPLES):
        start = time.perf_counter()
        response = client.get(f"{base}/routes/?page_size=100&page={i % 10 + 1}")
        list_times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200 and len(response.json()["results"]) == 100
    create_times = []
    for i in range(SAMPLES):
        body = {
            "name": f"new{i}",
            "service": f"s{i % SERVICES}",
            "paths": [{"value": f"/new/{i}"}],
            "methods": ["GET"],
        }
        start = time.perf_counter()
        response = client.post(f"{base}/routes/", body, format="json")
        create_times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 201, response.content
    # A consumer write publishes the whole consumers section again (10,000 consumers).
    consumer_times = []
    for i in range(SAMPLES):
        start = time.perf_counter()
        response = client.post(f"{base}/consumers/", {"username": f"new{i}"}, format="json")
        consumer_times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 201, response.content

    figures = {
        "list_routes_p95_ms": round(p95(list_times), 1),
        "create_route_p95_ms": round(p95(create_times), 1),
        "create_consumer_p95_ms": round(p95(consumer_times), 1),
        "create_consumer_p50_ms": round(statistics.median(consumer_times), 1),
        "compile_snapshot_ms": round(statistics.median(compile_times), 1),
        "list_routes_p50_ms": round(statistics.median(list_times), 1),
        "create_route_p50_ms": round(statistics.median(create_times), 1),
        "routes": ROUTES + SAMPLES,
        "services": SERVICES,
        "consumers": CONSUMERS,
    }
    # The cluster the developer portal grows: a write must cost what it changes (issue 27).
    step = int(os.environ.get("BENCH_CONSUMER_STEP", "100000"))
    if step:
        figures.update(consumer_step(step))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
