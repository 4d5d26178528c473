"""make bench-catalog: a cluster of 1,000 routes, 200 services and 10,000 consumers (each with a
key-auth credential). Measures, in one run against the real database:

- list_routes_p95_ms: GET a page of 100 routes through the API (in-process client);
- create_route_p95_ms: POST a route through the API, including compiling and storing the
  cluster's next snapshot in the same transaction;
- compile_snapshot_ms: compiling the whole cluster into a snapshot document (median).

The last line is one JSON object."""

import json
import os
import statistics
import sys
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
    routes: int = ROUTES, consumers: int = CONSUMERS, upstream_target: tuple[str, int] | None = None
) -> tuple:
    """An organization with one cluster of `routes` routes over 200 services and `consumers`
    consumers with a key-auth credential each (key `key-<consumer id>`), published."""
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
    user = User.objects.create_user(email="bench@example.com", password="a long passphrase")
    org = tenant_services.create_organization(Actor(user=user), name="Bench", slug="bench")
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
            Consumer(cluster=cluster, username=f"c{i}", labels={"tier": "free"}) for i in range(consumers)
        )
        secret = key_auth_secret(cluster)
        Credential.objects.bulk_create(
            Credential(
                cluster=cluster,
                consumer=c,
                type="key-auth",
                key_sha256=key_hmac_hex(secret, f"key-{c.id}"),
                key_scheme=Credential.KEY_HMAC_SHA256,
                key_prefix="key-",
            )
            for c in created
        )
        with transaction.atomic():
            publish(cluster, author="bench", reason="seed")

    return user, org, cluster


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
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
