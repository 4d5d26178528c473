"""Each call counted exactly once, with the status class its client saw, by the agent and the
real HAProxy: answers HAProxy makes itself (504 after `timeout server`, 503 when the upstream
refuses), clients that go away before the answer, an HTTP/2 stream reset, a call that outlasts
many reads, one that outlasts its worker's reload, and the agent SIGKILLed just after a reload
while the old worker drains (its drain reader keeps the final counts)."""

from __future__ import annotations

import json
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from gateway_agent.agent import Agent, AgentSettings
from gateway_agent.metering import TABLE
from gateway_agent.protocol import STATUS_CODES, UsageBatch, document_sha256
from gateway_agent.runtime_api import RuntimeAPI, RuntimeAPIError
from gateway_agent.usage import ANSWERED, FIRST_CODE, SENT, UsageSpool, parse_usage_table
from saas.launcher.services import free_port
from tests.control_plane import stop_haproxy, wait_for

# Each test's own routes, by id: (path prefix, service). Service 1's upstream is waited for at
# most 1 s, service 2's `wait_read_s` (10 s); service 3's upstream refuses connections.
FAST, SLOW, DEAD, ABORT, H2, LONG = 1, 2, 3, 4, 5, 6
ROUTES = {
    FAST: ("/fast", 1),
    SLOW: ("/slow", 1),
    DEAD: ("/dead", 3),
    ABORT: ("/abort", 2),
    H2: ("/h2", 2),
    LONG: ("/long", 2),
}


class _Upstream(BaseHTTPRequestHandler):
    """GET /<route>/<seconds>/<status>: answers <status> after <seconds>."""

    def do_GET(self) -> None:
        *_, delay, status = self.path.split("/")
        time.sleep(float(delay))
        body = b"ok\n"
        try:
            self.send_response(int(status))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # HAProxy gave up on it (timeout server)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _document(upstream_port: int, dead_port: int, wait_read_s: float = 10) -> dict:
    def upstream(upstream_id: int, port: int, read_s: float) -> dict:
        return {
            "id": upstream_id,
            "name": f"u{upstream_id}",
            "targets": [{"host": "127.0.0.1", "port": port}],
            "timeouts": {"connect_s": 0.5, "send_s": read_s, "read_s": read_s},
            "retries": 0,
        }

    return {
        "schema_version": 1,
        "cluster_id": 1,
        "global_plugins": [],
        "upstreams": [
            upstream(1, upstream_port, 1),
            upstream(2, upstream_port, wait_read_s),
            upstream(3, dead_port, 1),
        ],
        "services": [
            {"id": 1, "name": "short", "upstream_id": 1},
            {"id": 2, "name": "long", "upstream_id": 2},
            {"id": 3, "name": "dead", "upstream_id": 3},
        ],
        "routes": [
            {
                "id": route,
                "name": prefix[1:],
                "service_id": service,
                "paths": [{"type": "prefix", "value": prefix}],
            }
            for route, (prefix, service) in ROUTES.items()
        ],
        "consumers": [],
        "certificates": [],
    }


def _served(version: int, document: dict) -> bytes:
    sha = document_sha256(document)
    return json.dumps({"version": version, "sha256": sha, "sections": {}, "document": document}).encode()


class _NoControlPlane:
    def post_usage(self, body: bytes) -> int:
        return 503  # batches stay in the spool, where the tests count them

    def close(self) -> None:
        pass


@dataclass
class Gateway:
    agent: Agent
    port: int
    upstream_port: int
    dead_port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def counted(self, route: int) -> Counter[str]:
        """The calls of `route` in every batch the agent spooled so far, by status: the code for
        those counted one by one, else the class."""
        totals: Counter[str] = Counter()
        for path in self.agent.spool.pending():
            for item in UsageBatch.model_validate_json(path.read_bytes()).items:
                if item.route_id == route:
                    totals[str(item.status_code or item.status_class)] += item.requests
        return totals

    def table(self) -> dict[str, list[int]]:
        with self.agent.haproxy.runtime_api() as api:
            return parse_usage_table(api.worker(f"show table {TABLE}"))

    def read_until(self, route: int, expected: dict[str, int], timeout: float = 8) -> Counter[str]:
        """Reads the counters (as the agent does every few seconds) until `route` has `expected`
        or `timeout` passes; then a few reads more, which must add nothing."""
        deadline = time.monotonic() + timeout
        while self.counted(route) != Counter(expected) and time.monotonic() < deadline:
            self.agent.collect_usage()
            time.sleep(0.1)
        for _ in range(3):
            self.agent.collect_usage()
        return self.counted(route)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    folder: Path = tmp_path_factory.mktemp("usage-counting")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    dead_port = free_port()  # nothing listens there: connections are refused
    settings = AgentSettings(
        "http://127.0.0.1:9",
        "token",
        folder / "agent",
        http_port=free_port(),
        https_port=None,
        metrics_port=None,
    )
    agent = Agent(settings, _NoControlPlane())  # type: ignore[arg-type]
    gateway = Gateway(agent, settings.http_port, server.server_address[1], dead_port)
    agent.apply(_served(1, _document(gateway.upstream_port, dead_port)), keep=False)
    try:
        yield gateway
    finally:
        agent.stop()
        server.shutdown()


def _send(gateway: Gateway, path: str) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", gateway.port))
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: api\r\n\r\n".encode())
    return client


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def test_an_answer_haproxy_makes_itself_counts_once_with_its_code(gateway):
    """504: the upstream answers after `timeout server` (1 s), when HAProxy has answered for it.
    503: the upstream refuses the connection. Neither runs an `http-response` rule; the
    `http-after-response` rule counts them."""
    with httpx.Client(timeout=10) as client:
        assert client.get(gateway.url("/slow/2.5/200")).status_code == 504
        assert client.get(gateway.url("/dead/0/200")).status_code == 503
        assert client.get(gateway.url("/fast/0/200")).status_code == 200
    assert gateway.read_until(SLOW, {"504": 1}) == {"504": 1}
    assert gateway.read_until(DEAD, {"503": 1}) == {"503": 1}
    assert gateway.read_until(FAST, {"2xx": 1}) == {"2xx": 1}
    # Counted by HAProxy as answered, with its code and not its class, the moment it answered.
    for route, code in ((SLOW, 504), (DEAD, 503)):
        [row] = [values for key, values in gateway.table().items() if key.split("|")[1] == str(route)]
        assert row[:SENT] == [0] * 5 and row[FIRST_CODE + STATUS_CODES.index(code)] == 1
        assert row[SENT] == row[ANSWERED] == 1
    time.sleep(2)  # the upstream's late answer to the 504 changes nothing
    assert gateway.read_until(SLOW, {"504": 1}, timeout=0) == {"504": 1}


def test_a_call_whose_client_went_away_counts_once_with_the_upstreams_answer(gateway):
    """Without `option abortonclose`, HAProxy still waits for the upstream and runs the response
    rules when a client closes (FIN) or resets (RST) its connection before the answer."""
    closed = _send(gateway, "/abort/1.5/201")
    reset = _send(gateway, "/abort/1.5/202")
    time.sleep(0.3)
    closed.close()
    reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    reset.close()
    gateway.agent.collect_usage()
    assert gateway.counted(ABORT) == {}  # in flight: nothing counted yet
    assert gateway.read_until(ABORT, {"2xx": 2}) == {"2xx": 2}


def test_an_http2_stream_reset_before_the_answer_counts_once_as_5xx(gateway):
    """RST_STREAM ends the request at once: it went upstream and will never be answered. HAProxy
    shows it gone (more unanswered than live requests holding the entry): 5xx, once, while the
    call beside it, still waiting, counts with its answer."""
    path = b"/h2/2/200"
    headers = b"\x82\x86\x44" + bytes([len(path)]) + path + b"\x41\x03api"  # GET http <path> api
    with _send(gateway, path.decode()), socket.create_connection(("127.0.0.1", gateway.port)) as h2:
        h2.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0, b"") + _frame(1, 5, 1, headers))
        time.sleep(0.3)
        h2.sendall(_frame(3, 0, 1, struct.pack(">I", 8)))  # RST_STREAM, CANCEL
        assert gateway.read_until(H2, {"5xx": 1}, timeout=1) == {"5xx": 1}  # the other still waits
        assert gateway.read_until(H2, {"5xx": 1, "2xx": 1}) == {"5xx": 1, "2xx": 1}


def test_a_call_longer_than_many_reads_and_a_reload_counts_once_when_answered(gateway):
    """A call in flight across many reads, then a reload while it still waits: its worker stays
    (no `hard-stop-after`), a drain reader holds it until it serves no one, and the call counts
    once, on that worker, when it is answered."""
    calls = {}

    def call() -> None:
        with httpx.Client(timeout=20) as client:
            calls["answer"] = client.get(gateway.url("/long/4/200")).status_code

    caller = threading.Thread(target=call)
    caller.start()
    for _ in range(10):
        gateway.agent.collect_usage()
        time.sleep(0.1)
    assert gateway.counted(LONG) == {}
    worker = gateway.agent.haproxy.current_worker_pid()
    # A change of a backend's timeouts: a reload, not a runtime change.
    document = _document(gateway.upstream_port, gateway.dead_port, wait_read_s=9)
    gateway.agent.apply(_served(2, document), keep=False)
    assert gateway.agent.haproxy.current_worker_pid() != worker
    [reader] = gateway.agent._drain_readers
    assert reader.poll() is None and _worker_pids(gateway.agent.data) == [
        gateway.agent.haproxy.current_worker_pid(),
        worker,
    ]
    caller.join(timeout=15)
    assert calls == {"answer": 200}
    assert gateway.read_until(LONG, {"2xx": 1}) == {"2xx": 1}
    # The old worker, done, is let go once its final counts are on disk; they are read and the
    # file deleted.
    assert reader.wait(timeout=5) == 0
    wait_for(lambda: len(_worker_pids(gateway.agent.data)) == 1, 5, what="the old worker to exit")
    assert gateway.read_until(LONG, {"2xx": 1}, timeout=0) == {"2xx": 1}
    assert list(gateway.agent.drained.iterdir()) == []


# --- the agent killed while an old worker drains -------------------------------------------

# The agent as its own process, without a control plane: it applies each snapshot file named on
# its standard input and says so, and counts every second (its batches stay in the spool).
_AGENT = """
import sys, threading
from pathlib import Path
from gateway_agent.agent import Agent, AgentSettings

class NoControlPlane:
    def post_usage(self, body):
        return 503
    def close(self):
        pass

settings = AgentSettings(
    "http://127.0.0.1:9", "token", Path(sys.argv[1]), http_port=int(sys.argv[2]), https_port=None,
    metrics_port=None,
)
agent = Agent(settings, NoControlPlane())
threading.Thread(target=agent._send_usage, args=(1.0,), daemon=True).start()
for line in sys.stdin:
    agent.apply(Path(line.strip()).read_bytes(), keep=False)
    print("applied", flush=True)
"""


def _worker_pids(data: Path) -> list[int]:
    """The workers the master lists, the current one first; none while it cannot be asked."""
    try:
        with RuntimeAPI(data / "run" / "master.sock") as api:
            return api.worker_pids()
    except RuntimeAPIError:
        return []


def _spooled(data: Path) -> Counter[tuple[int, str]]:
    """Calls by (route, status class) in every batch spooled in the agent's data folder."""
    totals: Counter[tuple[int, str]] = Counter()
    for path in UsageSpool(data / "usage").pending():
        for item in UsageBatch.model_validate_json(path.read_bytes()).items:
            totals[(item.route_id, item.status_class)] += item.requests
    return totals


@dataclass
class KilledAgent:
    """An agent process, its data folder and port, the snapshots it applies, and the answers
    the clients got, by (route, status class)."""

    data: Path
    port: int
    snapshots: list[Path]
    process: subprocess.Popen[str] | None = None
    answered: Counter[tuple[int, str]] = field(default_factory=Counter)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _AGENT, str(self.data), str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def apply(self, version: int) -> None:
        assert self.process is not None and self.process.stdin and self.process.stdout
        self.process.stdin.write(f"{self.snapshots[version - 1]}\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline() == "applied\n"

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def restarted(self) -> Agent:
        """The agent again, in this process: it adopts the HAProxy left serving."""
        settings = AgentSettings(
            "http://127.0.0.1:9", "token", self.data, http_port=self.port, https_port=None, metrics_port=None
        )
        return Agent(settings, _NoControlPlane())  # type: ignore[arg-type]

    def call(self, path: str, timeout: float = 10) -> int:
        route = next((route for route, (prefix, _) in ROUTES.items() if path.startswith(prefix + "/")), 0)
        with httpx.Client(timeout=timeout) as client:
            status = client.get(f"http://127.0.0.1:{self.port}{path}").status_code
        self.answered[(route, f"{status // 100}xx")] += 1
        return status

    def calls(self, *paths: str) -> None:
        for path in paths:
            self.call(path)


@pytest.fixture
def killed_agent(tmp_path: Path) -> Iterator[KilledAgent]:
    """A gateway of its own (the agent is killed), with upstreams waited for up to 30 s."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    snapshots = []
    for version, wait_s in ((1, 30), (2, 29), (3, 28)):
        path = tmp_path / f"v{version}.json"
        path.write_bytes(
            _served(version, _document(server.server_address[1], free_port(), wait_read_s=wait_s))
        )
        snapshots.append(path)
    gateway = KilledAgent(tmp_path / "agent", free_port(), snapshots)
    try:
        yield gateway
    finally:
        if gateway.process is not None and gateway.process.poll() is None:
            gateway.kill()
        stop_haproxy(gateway.data)  # its drain readers end with their workers
        server.shutdown()


def _slow_call(gateway: KilledAgent, path: str) -> threading.Thread:
    """A call on its own thread; its answer lands in `gateway.answered`."""
    caller = threading.Thread(target=gateway.call, args=(path, 60))
    caller.start()
    time.sleep(0.5)  # in flight at HAProxy
    return caller


def _drained_files(gateway: KilledAgent) -> list[Path]:
    return sorted((gateway.data / "usage" / "drained").glob("*.table"))


def test_an_agent_killed_while_the_old_worker_drains_loses_nothing_of_it(killed_agent):
    """A 10 s call in flight, a reload, the agent SIGKILLed right after it. While the agent is
    down the new worker serves more calls and the slow call ends, so the old worker exits: its
    drain reader, a process of its own, wrote its final counts first. The agent restarted counts
    every call exactly once, with its status class."""
    gateway = killed_agent
    gateway.start()
    gateway.apply(1)
    gateway.calls("/fast/0/200", "/fast/0/201", "/dead/0/200", "/nowhere")
    slow = _slow_call(gateway, "/long/10/200")
    gateway.calls("/fast/0/200")  # after the agent's last read on its own
    gateway.apply(2)
    gateway.kill()
    old, new = _worker_pids(gateway.data)[1], _worker_pids(gateway.data)[0]
    assert _drained_files(gateway) == []

    # The agent down: the new worker serves; the old one finishes its call and exits.
    gateway.calls("/fast/0/200", "/fast/0/302", "/slow/2.5/200", "/dead/0/200", "/nowhere", "/fast/0/404")
    slow.join(timeout=30)
    assert gateway.answered[(LONG, "2xx")] == 1
    wait_for(lambda: _worker_pids(gateway.data) == [new], 5, what=f"the old worker {old} to exit")
    [final] = _drained_files(gateway)
    assert final.name.startswith(f"{old}-")
    before = _spooled(gateway.data)
    assert before[(LONG, "2xx")] == 0  # in flight at the killed agent's last read

    agent = gateway.restarted()
    try:
        agent.collect_usage()
        assert _spooled(gateway.data) == gateway.answered
        assert _drained_files(gateway) == []  # accounted for: deleted
        for _ in range(3):  # more reads add nothing
            agent.collect_usage()
        assert _spooled(gateway.data) == gateway.answered
    finally:
        agent.stop()


def test_an_agent_restarted_while_the_old_worker_drains_reads_it_then_its_final_counts(killed_agent):
    """The agent killed right after a reload and restarted while the old worker still serves a
    slow call: it reads that worker through the master CLI (it cannot hold it: its drain reader
    does), so the call stays in flight rather than being settled as 5xx. The restarted agent
    applies its snapshot again (a reload, as at every start). When the slow call ends, the drain
    reader's file wakes the counting within moments, and every call counts exactly once."""
    gateway = killed_agent
    gateway.start()
    gateway.apply(1)
    gateway.calls("/fast/0/200", "/dead/0/200")
    slow = _slow_call(gateway, "/long/6/200")
    gateway.apply(2)
    gateway.kill()
    old = _worker_pids(gateway.data)[1]
    gateway.calls("/fast/0/200", "/nowhere")

    agent = gateway.restarted()
    try:
        agent.collect_usage()
        assert old in _worker_pids(gateway.data)
        assert _spooled(gateway.data)[(LONG, "5xx")] == 0  # read, still in flight: not settled
        agent.apply(gateway.snapshots[2].read_bytes(), keep=False)  # a reload: another drain reader
        reader = agent._drain_readers[-1]
        threading.Thread(target=agent._send_usage, args=(600.0,), daemon=True).start()
        gateway.calls("/fast/0/200", "/fast/0/500", "/nowhere")
        time.sleep(0.5)
        assert _spooled(gateway.data)[(LONG, "2xx")] == 0
        slow.join(timeout=30)
        assert gateway.answered[(LONG, "2xx")] == 1
        # Read when the old worker's final counts are written, not at the next interval (600 s).
        wait_for(lambda: _spooled(gateway.data) == gateway.answered, 5, what="every call counted")
        assert reader.wait(timeout=5) == 0
        wait_for(lambda: len(_worker_pids(gateway.data)) == 1, 5, what="the old workers to exit")
        wait_for(lambda: _drained_files(gateway) == [], 5, what="the final counts to be taken")
        agent.collect_usage()
        assert _spooled(gateway.data) == gateway.answered
    finally:
        agent.stop()
