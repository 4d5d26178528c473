"""make bench-gateway: requests per second and p99 latency through, in one run and against the
same upstream (an nginx answering 200 "ok"):

  (a) nothing: wrk straight to the upstream;
  (b) a plain HAProxy reverse proxy;
  (c) our gateway: the agent's rendered configuration for a cluster of 1,000 routes and 10,000
      consumers, on a route with key-auth and limit-count (a limit the run never reaches);
  (d) nginx as a plain reverse proxy (the engine under APISIX).

wrk runs each target in turn, BENCH_ROUNDS times (10), for BENCH_DURATION_S seconds each (4):
the ratios are medians of ratios within a round. The load of this shared machine drifts within
seconds, so many short rounds, whose passes run side by side, scatter less than a few long ones:
in one hour, two runs of ten 4-second rounds measured gateway_vs_haproxy 0.847 and 0.850, five
of five 8-second rounds 0.788 to 0.973. Requests per second still move by 10 % and more from
one run to the next, so (b) and (c) are also run once more under
callgrind, one thread each, for HAProxy's own instructions per request over the same 2,000
keep-alive requests: a figure only a change of configuration (or HAProxy) moves.

Each wrk pass also measures what a request cost in CPU: the whole machine's time (wrk, the
upstream, the proxy and the kernel's loopback network work) and the proxy's own, in user space
and in the kernel. From nginx's figures comes `gateway_vs_nginx_bound`: the most any proxy could
reach against nginx here, one that spent no time at all in user space.

Then the agent itself, running against a live control plane with that cluster: its CPU (share of
one core over 20 s of steady state) and resident memory. The last line is one JSON object."""

import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.control_plane import start_agent, start_control_plane, wait_until_up  # noqa: E402
from tests.perf.bench_catalog import django_on_fresh_database, seed_cluster  # noqa: E402

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
DURATION_S = int(os.environ.get("BENCH_DURATION_S", "4"))
CONNECTIONS = 64
IR_REQUESTS = 2000


def free_port() -> int:
    from saas.launcher.services import free_port as pick

    return pick()


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def nginx(folder: Path, body: str) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "logs").mkdir(exist_ok=True)
    (folder / "nginx.conf").write_text(
        "worker_processes auto; pid nginx.pid; error_log logs/error.log;\n"
        "events { worker_connections 4096; }\n"
        "http { access_log off; keepalive_requests 100000;\n" + body + "\n}\n"
    )
    return subprocess.Popen([NGINX, "-p", str(folder), "-c", "nginx.conf", "-g", "daemon off;"])


def ok_upstream(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The upstream every benchmark proxies to: nginx answering 200 "ok"; and its port."""
    port = free_port()
    server = nginx(
        work / "upstream", f'server {{ listen 127.0.0.1:{port}; location / {{ return 200 "ok\\n"; }} }}'
    )
    return server, port


def stop(processes: list[subprocess.Popen[bytes]] | list[subprocess.Popen], work: Path) -> None:
    """Stop what a benchmark started, newest first, and remove its folder."""
    for process in reversed(processes):
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    shutil.rmtree(work, ignore_errors=True)


def plain_haproxy(work: Path, port: int, upstream_port: int) -> subprocess.Popen[bytes]:
    """HAProxy as a plain reverse proxy, the baseline the gateway is compared with."""
    config = work / "plain.cfg"
    config.write_text(
        "global\n    maxconn 4096\ndefaults\n    mode http\n    timeout connect 5s\n    timeout client 60s\n"
        "    timeout server 60s\n    option http-keep-alive\n    http-reuse safe\n"
        f"frontend f\n    bind 127.0.0.1:{port}\n    default_backend b\n"
        f"backend b\n    server s 127.0.0.1:{upstream_port}\n"
    )
    return subprocess.Popen([HAPROXY, "-db", "-f", str(config)])


@dataclass(frozen=True)
class WrkRun:
    rps: float
    p99_ms: float
    requests: int


def wrk(url: str, headers: dict[str, str] | None = None) -> WrkRun:
    command = [WRK, "-t2", f"-c{CONNECTIONS}", f"-d{DURATION_S}s", "--latency", url]
    for name, value in (headers or {}).items():
        command[1:1] = ["-H", f"{name}: {value}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    assert p99, output
    figure, unit = float(p99.group(1)), p99.group(2)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        raise RuntimeError(f"{url}: {non_2xx.group(1)} non-2xx answers\n{output}")
    p99_ms = figure / 1000 if unit == "us" else figure * 1000 if unit == "s" else figure
    return WrkRun(rps, p99_ms, requests)


WRK_ROUNDS = int(os.environ.get("BENCH_ROUNDS", "10"))  # the median of ten: single passes scatter by 0.1


@dataclass(frozen=True)
class CpuPerRequest:
    """CPU microseconds a request cost during one wrk pass: the whole machine's (every process
    and the kernel's network work), and the proxy's own, in user space and in the kernel."""

    machine_us: float
    proxy_user_us: float
    proxy_system_us: float


def busy_seconds() -> float:
    """The machine's CPU time spent so far, on all cores: everything but idle and I/O wait."""
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + times.irq + times.softirq


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """User and system seconds of the processes `pids` and their children (nginx's workers)."""
    processes = [psutil.Process(pid) for pid in pids]
    processes += [child for process in processes for child in process.children(recursive=True)]
    times = [process.cpu_times() for process in processes]
    return sum(t.user for t in times), sum(t.system for t in times)


@dataclass(frozen=True)
class Interleaved:
    """Each target's medians over rounds that run every target once, one after the other: the
    machine's load drifts by 10 to 15 % over a minute, so a ratio is taken within each round
    (where both figures saw the same load) and the median of those is reported."""

    rps: dict[str, float]
    p99_ms: dict[str, float]
    rounds: dict[str, list[float]]
    cpu: dict[str, list[CpuPerRequest]]

    def ratio(self, name: str, baseline: str) -> float:
        return statistics.median(a / b for a, b in zip(self.rounds[name], self.rounds[baseline], strict=True))

    def cpu_median(self, name: str) -> CpuPerRequest:
        return CpuPerRequest(
            *(
                statistics.median(getattr(c, field) for c in self.cpu[name])
                for field in CpuPerRequest.__annotations__
            )
        )


def wrk_interleaved(
    targets: dict[str, tuple[str, dict[str, str]]],
    rounds: int = WRK_ROUNDS,
    proxies: dict[str, list[int]] | None = None,
) -> Interleaved:
    """wrk on each target in turn, `rounds` times; with `proxies` (a target's process ids),
    what each request cost in CPU as well."""
    runs: dict[str, list[WrkRun]] = {name: [] for name in targets}
    cpu: dict[str, list[CpuPerRequest]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, (url, headers) in targets.items():
            pids = (proxies or {}).get(name, [])
            machine, (user, system) = busy_seconds(), cpu_seconds(pids)
            run = wrk(url, headers)
            machine_after, (user_after, system_after) = busy_seconds(), cpu_seconds(pids)
            runs[name].append(run)
            per_request = 1e6 / run.requests
            cpu[name].append(
                CpuPerRequest(
                    (machine_after - machine) * per_request,
                    (user_after - user) * per_request,
                    (system_after - system) * per_request,
                )
            )
    return Interleaved(
        rps={name: statistics.median(r.rps for r in results) for name, results in runs.items()},
        p99_ms={name: statistics.median(r.p99_ms for r in results) for name, results in runs.items()},
        rounds={name: [r.rps for r in results] for name, results in runs.items()},
        cpu=cpu,
    )


def instructions_per_request(
    config: Path, port: int, requests: dict[str, tuple[str, dict[str, str]]], work: Path
) -> dict[str, float]:
    """HAProxy's instructions per request (callgrind) with `config` on one thread, for each
    named (path, headers): IR_REQUESTS sequential keep-alive requests after a warm-up, counted
    apart; start-up is not counted."""
    single = work / f"single-{config.name}"
    single.write_text(config.read_text().replace("global\n", "global\n    nbthread 1\n", 1))
    out = work / f"callgrind-{config.stem}"
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", HAPROXY, "-db", "-f", str(single)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    figures = {}
    try:
        wait_port(port, timeout=300)  # HAProxy under valgrind loads 10,000 consumers slowly
        for name, (path, headers) in requests.items():
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:
                for _ in range(200):
                    answer = client.get(path)
                    assert answer.status_code == 200, (path, answer.status_code, answer.text)
                subprocess.run(
                    ["callgrind_control", "--zero", str(process.pid)], check=True, capture_output=True
                )
                for _ in range(IR_REQUESTS):
                    client.get(path)
                dumped = set(glob.glob(f"{out}.*"))
                subprocess.run(
                    ["callgrind_control", "--dump", str(process.pid)], check=True, capture_output=True
                )
            [dump] = set(glob.glob(f"{out}.*")) - dumped
            total = re.search(r"^(?:summary|totals): (\d+)", Path(dump).read_text(), re.MULTILINE)
            assert total, dump
            figures[name] = int(total.group(1)) / IR_REQUESTS
    finally:
        process.terminate()
        process.wait(timeout=60)
    return figures


def main() -> None:
    django_on_fresh_database("bench_gateway")

    from django_tenants.utils import schema_context

    from gateway_agent.protocol import Snapshot
    from gateway_agent.renderer import RenderOptions, render
    from saas.catalog import services as catalog
    from saas.gateways.agents import AgentContext, served_snapshot
    from saas.gateways.services import Author, create_cluster_token
    from tenants.audit import Actor

    work = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        upstream, upstream_port = ok_upstream(work)
        processes.append(upstream)
        wait_port(upstream_port)

        user, org, cluster = seed_cluster(upstream_target=("127.0.0.1", upstream_port))
        author = Author(actor=Actor(user=user), organization=org)
        with schema_context(org.schema_name):
            catalog.save_route(
                author,
                cluster,
                {
                    "name": "bench",
                    "service": "s0",
                    "paths": [{"value": "/bench"}],
                    "plugins": {
                        "limit-count": {"count": 1_000_000_000, "time_window": 3600, "key": "consumer"}
                    },
                },
            )
            consumer_id = catalog.Consumer.objects.get(cluster=cluster, username="c0").id
            _, token = create_cluster_token(author, cluster, name="bench")
            served = served_snapshot(AgentContext(org.id, org.schema_name, cluster.id, 0))
        assert served is not None
        key = f"key-{consumer_id}"

        # (b) plain HAProxy
        plain_port = free_port()
        plain = plain_haproxy(work, plain_port, upstream_port)
        processes.append(plain)
        # (c) the gateway, as the agent renders it
        gateway_port = free_port()
        gateway_dir = work / "gateway"
        files = render(
            Snapshot.model_validate(served["document"]),
            RenderOptions(
                http_port=gateway_port,
                https_port=None,
                metrics_port=None,
                bind_address="127.0.0.1",
                config_dir=str(gateway_dir),
                runtime_socket=str(work / "gateway.sock"),
            ),
        )
        for name, content in files.items():
            (gateway_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (gateway_dir / name).write_text(content)
        gateway = subprocess.Popen([HAPROXY, "-db", "-f", str(gateway_dir / "haproxy.cfg")])
        processes.append(gateway)
        # (d) nginx reverse proxy
        nginx_port = free_port()
        nginx_proxy = nginx(
            work / "proxy",
            f"upstream u {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}\n"
            f"server {{ listen 127.0.0.1:{nginx_port}; location / {{ proxy_pass http://u; "
            'proxy_http_version 1.1; proxy_set_header Connection ""; } }',
        )
        processes.append(nginx_proxy)
        for port in (plain_port, gateway_port, nginx_port):
            wait_port(port)
        check = httpx.get(f"http://127.0.0.1:{gateway_port}/bench", headers={"apikey": key})
        assert check.status_code == 200 and check.text == "ok\n", (check.status_code, check.text)
        assert httpx.get(f"http://127.0.0.1:{gateway_port}/bench").status_code == 401

        runs = wrk_interleaved(
            {
                "direct": (f"http://127.0.0.1:{upstream_port}/bench", {}),
                "haproxy": (f"http://127.0.0.1:{plain_port}/bench", {}),
                "gateway": (f"http://127.0.0.1:{gateway_port}/bench", {"apikey": key}),
                "nginx": (f"http://127.0.0.1:{nginx_port}/bench", {}),
            },
            proxies={"haproxy": [plain.pid], "gateway": [gateway.pid], "nginx": [nginx_proxy.pid]},
        )
        for process in processes[1:]:  # the proxies, again one at a time under callgrind
            process.terminate()
            process.wait(timeout=20)
        del processes[1:]
        [haproxy_ir] = instructions_per_request(
            work / "plain.cfg", plain_port, {"plain": ("/bench", {})}, work
        ).values()
        [gateway_ir] = instructions_per_request(
            gateway_dir / "haproxy.cfg", gateway_port, {"gateway": ("/bench", {"apikey": key})}, work
        ).values()

        agent_cpu, agent_rss = measure_agent(token, work)
        figures = {
            "direct_rps": round(runs.rps["direct"]),
            "haproxy_rps": round(runs.rps["haproxy"]),
            "gateway_rps": round(runs.rps["gateway"]),
            "nginx_rps": round(runs.rps["nginx"]),
            "gateway_vs_haproxy": round(runs.ratio("gateway", "haproxy"), 3),
            "gateway_vs_nginx": round(runs.ratio("gateway", "nginx"), 3),
            "gateway_p99_ms": round(runs.p99_ms["gateway"], 2),
            "haproxy_p99_ms": round(runs.p99_ms["haproxy"], 2),
            "rounds": WRK_ROUNDS,
            "haproxy_instructions_per_request": round(haproxy_ir),
            "gateway_instructions_per_request": round(gateway_ir),
            "gateway_vs_haproxy_instructions": round(haproxy_ir / gateway_ir, 3),
            "cpu_us_per_request": {
                name: {field: round(value, 2) for field, value in asdict(runs.cpu_median(name)).items()}
                for name in runs.cpu
            },
            "nginx_vs_haproxy": round(runs.ratio("nginx", "haproxy"), 3),
            "gateway_vs_nginx_bound": round(no_user_space_bound(runs.cpu["nginx"]), 3),
            "agent_cpu_pct": round(agent_cpu, 2),
            "agent_rss_mb": round(agent_rss, 1),
        }
        print(json.dumps(figures))
    finally:
        stop(processes, work)


def no_user_space_bound(nginx: list[CpuPerRequest]) -> float:
    """The most any proxy could reach against nginx on this machine: the ratio of a proxy that
    spends no time at all in user space and the same time in the kernel as nginx, which makes
    the same four socket calls a request (receive and send on each side). The median over rounds."""
    return statistics.median(c.machine_us / (c.machine_us - c.proxy_user_us) for c in nginx)


def measure_agent(token: str, work: Path) -> tuple[float, float]:
    """The agent against a live control plane serving the 1,000-route, 10,000-consumer cluster."""
    control_port, http_port = free_port(), free_port()
    control = start_control_plane(control_port)
    agent = None
    try:
        wait_until_up(control_port)
        data = work / "agent"
        agent = start_agent(control_port, token, data, http_port)
        deadline = time.monotonic() + 60
        while not (data / "last_good.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # settled: applied, HAProxy running
        process = psutil.Process(agent.pid)
        process.cpu_percent(None)
        samples = []
        for _ in range(20):
            time.sleep(1)
            samples.append(process.cpu_percent(None))
        rss_mb = process.memory_info().rss / 1024 / 1024
        return statistics.mean(samples), rss_mb
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(timeout=20)
        control.terminate()
        control.wait(timeout=20)


if __name__ == "__main__":
    main()
