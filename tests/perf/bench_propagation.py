"""make bench-propagation: with 1,000 routes, 100 route changes through the REST API; for each,
the time from the API's response to the gateway serving the new route. Meanwhile wrk loads an
unchanged route through the same gateway and counts failures. Then 20 consumer changes under the
same load, which must cause no failure at all. The last line is one JSON object."""

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.control_plane import start_agent, start_control_plane  # noqa: E402
from tests.perf.bench_catalog import django_on_fresh_database, seed_cluster  # noqa: E402
from tests.perf.bench_gateway import WRK, free_port, ok_upstream, stop, wait_port  # noqa: E402

CHANGES = int(os.environ.get("BENCH_CHANGES", "100"))
CONSUMER_CHANGES = 20


def start_wrk(url: str, headers: dict[str, str], seconds: int) -> tuple[subprocess.Popen[str], list[str]]:
    command = [WRK, "-t1", "-c16", f"-d{seconds}s", url]
    for name, value in headers.items():
        command[1:1] = ["-H", f"{name}: {value}"]
    output: list[str] = []
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    threading.Thread(target=lambda: output.append(process.communicate()[0]), daemon=True).start()
    return process, output


def wrk_counts(text: str) -> tuple[int, int, int]:
    requests = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return requests, int(non_2xx.group(1)) if non_2xx else 0, sum(map(int, errors.groups())) if errors else 0


def main() -> None:
    django_on_fresh_database("bench_propagation")

    from django_tenants.utils import schema_context

    from saas.catalog.models import Consumer
    from saas.gateways.services import Author, create_cluster_token
    from tenants import services as tenant_services
    from tenants.audit import Actor
    from tenants.models import Membership

    work = Path(tempfile.mkdtemp(prefix="bench-propagation-"))
    processes: list[subprocess.Popen] = []
    try:
        upstream, upstream_port = ok_upstream(work)
        processes.append(upstream)
        wait_port(upstream_port)
        user, org, cluster = seed_cluster(upstream_target=("127.0.0.1", upstream_port))
        author = Author(actor=Actor(user=user), organization=org)
        membership = Membership.objects.get(user=user, organization=org)
        _, api_token = tenant_services.create_api_token(
            Actor(user=user), org, membership, name="bench", role_ceiling=None, expires_at=None
        )
        with schema_context(org.schema_name):
            _, cluster_token = create_cluster_token(author, cluster, name="bench")
            key = f"key-{Consumer.objects.get(cluster=cluster, username='c0').id}"

        control_port, http_port = free_port(), free_port()
        processes.append(start_control_plane(control_port))
        wait_port(control_port, timeout=30)
        processes.append(start_agent(control_port, cluster_token, work / "agent", http_port))
        gateway = f"http://127.0.0.1:{http_port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{gateway}/api/r0", headers={"apikey": key}, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)

        api = httpx.Client(
            base_url=f"http://127.0.0.1:{control_port}/api/v1/orgs/{org.slug}/clusters/{cluster.id}",
            headers={"Authorization": f"Bearer {api_token}"},
            timeout=30,
        )
        probe = httpx.Client(timeout=2)
        load, output = start_wrk(f"{gateway}/api/r1", {"apikey": key}, seconds=600)
        time.sleep(1)
        latencies = []
        for i in range(CHANGES):
            response = api.post(
                "/routes/",
                json={"name": f"p{i}", "service": f"s{i % 200}", "paths": [{"value": f"/prop/{i}/"}]},
            )
            assert response.status_code == 201, response.text
            answered = time.monotonic()
            while probe.get(f"{gateway}/prop/{i}/", headers={"apikey": key}).status_code != 200:
                if time.monotonic() - answered > 30:
                    raise RuntimeError(f"change {i} did not reach the gateway in 30 s")
                time.sleep(0.005)
            latencies.append((time.monotonic() - answered) * 1000)
        load.send_signal(signal.SIGINT)  # wrk prints its summary when interrupted
        load.wait()
        route_phase = output
        # Consumer changes only.
        consumer_load, consumer_output = start_wrk(f"{gateway}/api/r1", {"apikey": key}, seconds=600)
        time.sleep(1)
        for i in range(CONSUMER_CHANGES):
            created = api.post("/consumers/", json={"username": f"new{i}"})
            assert created.status_code == 201, created.text
            credential = api.post(
                f"/consumers/{created.json()['id']}/credentials/",
                json={"type": "key-auth", "key": f"new-consumer-key-{i:04d}"},
            )
            answered = time.monotonic()
            while (
                probe.get(f"{gateway}/api/r1", headers={"apikey": f"new-consumer-key-{i:04d}"}).status_code
                != 200
            ):
                if time.monotonic() - answered > 30:
                    raise RuntimeError(
                        f"consumer {i} did not reach the gateway in 30 s ({credential.status_code})"
                    )
                time.sleep(0.005)
        consumer_load.send_signal(signal.SIGINT)
        consumer_load.wait()
        time.sleep(0.5)
        requests, non_2xx, socket_errors = wrk_counts("".join(route_phase))
        c_requests, c_non_2xx, c_socket_errors = wrk_counts("".join(consumer_output))
        latencies.sort()
        figures = {
            "propagation_p50_ms": round(statistics.median(latencies), 1),
            "propagation_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1),
            "requests": requests,
            "non_2xx": non_2xx,
            "socket_errors": socket_errors,
            "consumer_changes_requests": c_requests,
            "consumer_changes_non_2xx": c_non_2xx,
            "consumer_changes_socket_errors": c_socket_errors,
        }
    finally:
        stop(processes, work)
    # Once everything has stopped: HAProxy's parting warnings must not follow the figures.
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
