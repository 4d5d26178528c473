"""Simulated gateway agents for `make bench-fleet`: thousands per process, each speaking the real
agent protocol over two keep-alive HTTP/1.1 connections as the agent does (one held by the
config long-poll, one for its reports): register, long-poll GET /agent/v1/config, and every
10 s a report (POST /agent/v1/report: a heartbeat and a usage batch of a few items), as an agent
with traffic does; with BENCH_FLEET_REPORTS=0, a heartbeat and a usage batch apart, as agents
did before reports.

Cheap on purpose (the control plane shares the machine): asyncio on uvloop, a minimal HTTP/1.1
client on raw streams, and the served snapshot read only for its version, which leads the
body. A process is driven by its parent over a pipe: `connect` more agents, `reset` the
counters (answering the errors met while connecting), `stats`, `stop`."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import resource
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

REPORT_INTERVAL_S = 10.0
REPORTS = os.environ.get("BENCH_FLEET_REPORTS", "1") != "0"
POLL_WAIT_S = 30
KEEP_ALIVE_S = 25.0  # as the agent's client (gateway_agent.client.KEEP_ALIVE_S)
REGISTERING_AT_ONCE = 50
VERSION = re.compile(rb'^\{"version":(\d+),')


class HTTPError(RuntimeError):
    pass


class Client:
    """One keep-alive HTTP/1.1 connection to the control plane, opened on first use and again
    after any failure."""

    def __init__(self, host: str, port: int, source: str, token: str) -> None:
        self.host, self.port, self.source = host, port, source
        self.auth = f"Authorization: Bearer {token}\r\nHost: {host}:{port}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0.0

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        # As the agent's httpx client does: a connection the server has closed, or idle past
        # the keep-alive expiry, is not reused.
        if self.reader is not None and (self.reader.at_eof() or time.monotonic() - self.used > KEEP_ALIVE_S):
            self.close()
        self.used = time.monotonic()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port, local_addr=(self.source, 0)
            )
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\n{self.auth}"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        try:
            self.writer.write(head.encode() + b"\r\n" + body)
            raw = await self.reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if headers.get("transfer-encoding") == "chunked":
                payload = b""
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                    chunk = await self.reader.readexactly(size + 2)
                    if size == 0:
                        break
                    payload += chunk[:-2]
            else:
                payload = await self.reader.readexactly(int(headers.get("content-length", "0")))
            if headers.get("connection") == "close":
                self.close()
            self.used = time.monotonic()
            return status, payload
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Stats:
    heartbeat_ms: list[float] = field(default_factory=list)
    usage_ms: list[float] = field(default_factory=list)
    report_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    # (cluster id, version) -> the times (time.time()) agents of the cluster received it
    received: dict[tuple[int, int], list[float]] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def usage_batch(instance_id: str, now: float, route_ids: list[int]) -> bytes:
    """What a lightly used gateway counted in 10 s: a few routes, a consumer or two, two status
    classes."""
    minute = int(now) - int(now) % 60
    items = [
        {
            "minute": minute,
            "route_id": route_id,
            "consumer": consumer,
            "status_class": status,
            "requests": random.randint(1, 200),
            "bytes_in": random.randint(100, 20_000),
            "bytes_out": random.randint(1_000, 200_000),
            "latency_ms_buckets": [3, 5, 2, 1],
        }
        for route_id in route_ids
        for consumer, status in (("app-1", "2xx"), ("", "4xx"))
    ]
    body = {
        "batch_id": uuid.uuid4().hex,
        "instance_id": instance_id,
        "window_start": now - REPORT_INTERVAL_S,
        "window_end": now,
        "items": items,
    }
    return json.dumps(body).encode()


class Agent:
    def __init__(self, spec: dict[str, Any], host: str, port: int, source: str, stats: Stats) -> None:
        self.cluster_id: int = spec["cluster_id"]
        self.route_ids: list[int] = spec["route_ids"]
        self.stats = stats
        self.poller = Client(host, port, source, spec["token"])
        self.reporter = Client(host, port, source, spec["token"])
        self.instance_id = ""
        self.version: int | None = None
        self.first_snapshot = asyncio.Event()

    async def register(self) -> None:
        body = json.dumps({"hostname": f"sim-{uuid.uuid4().hex[:8]}", "agent_version": "bench"}).encode()
        while True:
            try:
                status, answer = await self.reporter.request("POST", "/agent/v1/register", body)
                if status == 201:
                    self.instance_id = json.loads(answer)["instance_id"]
                    return
                self.stats.error(f"register {status}")
            except (OSError, asyncio.IncompleteReadError, ValueError):
                self.stats.error("register connection")
            await asyncio.sleep(1)

    async def poll(self) -> None:
        while True:
            path = f"/agent/v1/config?wait={POLL_WAIT_S}"
            if self.version is not None:
                path += f"&version={self.version}"
            try:
                status, body = await self.poller.request("GET", path)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                self.stats.error("poll connection")
                await asyncio.sleep(1)
                continue
            if status == 200:
                found = VERSION.match(body)
                if found is None:
                    self.stats.error("poll body")
                    continue
                self.version = int(found.group(1))
                self.stats.received.setdefault((self.cluster_id, self.version), []).append(time.time())
                self.first_snapshot.set()
            elif status != 304:
                self.stats.error(f"poll {status}")
                await asyncio.sleep(1)

    async def report(self) -> None:
        await asyncio.sleep(random.uniform(0, REPORT_INTERVAL_S))
        while True:
            started = time.monotonic()
            beat = json.dumps({"instance_id": self.instance_id, "applied_version": self.version}).encode()
            usage = usage_batch(self.instance_id, time.time(), self.route_ids)
            requests = (
                [
                    (
                        "report",
                        "/agent/v1/report",
                        b'{"heartbeat":' + beat + b',"usage":' + usage + b"}",
                        self.stats.report_ms,
                    )
                ]
                if REPORTS
                else [
                    ("heartbeat", "/agent/v1/heartbeat", beat, self.stats.heartbeat_ms),
                    ("usage", "/agent/v1/usage", usage, self.stats.usage_ms),
                ]
            )
            for what, path, body, into in requests:
                sent = time.monotonic()
                try:
                    status, answer = await self.reporter.request("POST", path, body)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    self.stats.error(f"{what}: {type(exc).__name__} {exc}"[:120])
                    continue
                into.append((time.monotonic() - sent) * 1000)
                if status not in (200, 202, 204) or (
                    status == 200 and answer != b'{"usage":"accepted","heartbeat":"stored"}'
                ):
                    self.stats.error(f"{what} {status} {answer[:60]!r}")
            # As the agent does: every 10 s give or take a tenth (gateway_agent.agent._send_usage).
            interval = REPORT_INTERVAL_S * random.uniform(0.9, 1.1)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))


async def _serve(conn: Connection, host: str, port: int, sources: list[str]) -> None:
    stats = Stats()
    agents: list[Agent] = []
    tasks: list[asyncio.Task[None]] = []
    loop = asyncio.get_running_loop()
    cpu_start = time.process_time()
    wall_start = time.monotonic()
    while True:
        command, argument = await loop.run_in_executor(None, conn.recv)
        if command == "connect":
            fresh = [
                Agent(spec, host, port, sources[(len(agents) + i) % len(sources)], stats)
                for i, spec in enumerate(argument)
            ]
            agents.extend(fresh)
            # Registered a few dozen at a time per generator, as a fleet rolls out, each polling
            # and reporting once registered, as an agent does (not every one of them at the end,
            # thousands of connections at once, which no rollout does).
            for start in range(0, len(fresh), REGISTERING_AT_ONCE):
                batch = fresh[start : start + REGISTERING_AT_ONCE]
                await asyncio.gather(*(agent.register() for agent in batch))
                for agent in batch:
                    tasks.append(asyncio.create_task(agent.poll()))
                    tasks.append(asyncio.create_task(agent.report()))
            await asyncio.wait_for(
                asyncio.gather(*(agent.first_snapshot.wait() for agent in fresh)), timeout=600
            )
            conn.send(len(agents))
        elif command == "reset":
            ramp_errors = dict(stats.errors)  # while connecting: answered, then cleared
            stats.heartbeat_ms.clear()
            stats.usage_ms.clear()
            stats.report_ms.clear()
            stats.errors.clear()
            cpu_start, wall_start = time.process_time(), time.monotonic()
            conn.send(ramp_errors)
        elif command == "stats":
            connected = sum(1 for a in agents for c in (a.poller, a.reporter) if c.writer is not None)
            conn.send(
                {
                    "heartbeat_ms": stats.heartbeat_ms,
                    "usage_ms": stats.usage_ms,
                    "report_ms": stats.report_ms,
                    "errors": stats.errors,
                    "received": {f"{c}:{v}": times for (c, v), times in stats.received.items()},
                    "connections": connected,
                    "cpu_s": time.process_time() - cpu_start,
                    "wall_s": time.monotonic() - wall_start,
                    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                }
            )
        elif command == "stop":
            for task in tasks:
                task.cancel()
            for agent in agents:
                agent.poller.close()
                agent.reporter.close()
            conn.send(True)
            return


def run_agents(conn: Connection, host: str, port: int, sources: list[str]) -> None:
    """A generator process's entry point (multiprocessing, spawn)."""
    import uvloop

    uvloop.run(_serve(conn, host, port, sources))
