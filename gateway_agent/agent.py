"""The agent's work: keep HAProxy serving the cluster's latest snapshot, safely.

- At start, the last good snapshot on disk is served at once, so a gateway restarted while the
  control plane is away still serves.
- It registers, sends a heartbeat every 10 s (applied version, last error; carried by the report
  that delivers a usage batch, when there is one), and long-polls for snapshots; when the control plane is unreachable it retries with backoff and jitter. A cluster
  token the control plane refuses (revoked, or past a rotation's grace period) is logged as
  such, and asked about again only every 15 to 30 s; the last good snapshot keeps serving.
- A new snapshot is rendered into a fresh folder. When only map files (consumers, keys, most
  route changes) and server weights differ from what HAProxy serves, the change goes through
  HAProxy's runtime API: maps swapped atomically, no reload. Otherwise it is checked with
  `haproxy -c`, the `current` link is swapped atomically and HAProxy reloaded without dropping
  connections. A snapshot that
  fails anywhere on the way changes nothing: the last good one keeps serving, and the error is
  reported with the next heartbeat.
- Nothing sent is trusted: before anything is written, the version must be an integer from 1 to
  2^53-1, every hash 64 hex digits, and each section's hash and the document's are recomputed
  from the content (`protocol.verify_served`). Every path built stays inside the data folder,
  checked on resolved paths before a write or a delete."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import logging
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__, limit_counters
from .client import ControlPlane, TokenRefused
from .durable import write_atomically
from .haproxy import HAProxyError, HAProxyProcess, check_config, haproxy_version
from .metering import TABLE as USAGE_TABLE
from .protocol import (
    Heartbeat,
    RegisterRequest,
    ShardsMissing,
    SnapshotParser,
    SnapshotRefused,
    VerifiedSnapshot,
    verify_served,
)
from .renderer import RenderError, RenderOptions, render
from .runtime_api import RuntimeAPIError, WorkerSession
from .runtime_update import plan_runtime_update, rebase
from .shard_store import ShardStore
from .usage import SpoolLimits, UsageMeter, UsageSpool, merge_reads, parse_usage_table, send_pending

logger = logging.getLogger("gateway_agent")
KEEP_VERSIONS = 5
# Retries of the long-poll after a failure: 0.25 s, doubling up to 1 s, each times a random
# 0.5 to 1: a change published after an outage reaches the gateway within about 2 s.
RETRY_FIRST_S = 0.25
RETRY_CAP_S = 1.0
# Retries once the control plane refuses the cluster token: a refusal is final for that token
# (only a restart with a current one helps), so a fleet left on it need not ask every second.
REFUSED_RETRY_S = 30.0
# A drain reader's life: longer than any route's timeout (an hour at most), with a margin.
DRAIN_LIMIT_S = 2 * 3600
DRAIN_MARGIN_S = 600
# How often the usage loop looks for final counts a drain reader wrote: a listing of a folder.
DRAINED_POLL_S = 0.1
DRAINED_RETRY_S = 1.0  # after a read that could not take them
# A stop: HAProxy finishes what it serves within this, then the spool is delivered within the
# next. Together well inside the chart's 60 s grace period: a pod's data folder (an emptyDir)
# goes with the pod, so what is not delivered by then is never billed.
STOP_SERVE_S = 20.0
STOP_DELIVERY_S = 15.0
_SERVER_TIMEOUT = re.compile(r"^\s*timeout (?:server|tunnel) (\d+)ms$", re.MULTILINE)


REPORTS_RETRY_S = 300.0  # after a control plane took no report, how long heartbeats and usage go apart


def drain_limit_s(*configs: str) -> float:
    """How long a drain reader may hold an old worker: DRAIN_LIMIT_S, or longer when a backend
    of the configurations waits longer for its upstream."""
    longest = max((int(ms) / 1000 for config in configs for ms in _SERVER_TIMEOUT.findall(config)), default=0)
    return max(DRAIN_LIMIT_S, longest + DRAIN_MARGIN_S)


@dataclass
class AgentSettings:
    control_plane_url: str
    token: str
    data_dir: Path
    haproxy_bin: str = "haproxy"
    http_port: int = 8080
    https_port: int | None = 8443
    metrics_port: int | None = 9101
    bind_address: str = "*"
    poll_wait_s: float = 30
    labels: dict[str, str] = field(default_factory=dict)
    usage_spool: SpoolLimits = field(default_factory=SpoolLimits)
    insecure_http: bool = False  # allow a plain-http control plane that is not on loopback


def inside(path: Path, folder: Path) -> Path:
    """`path` resolved, if it lies strictly inside `folder` (resolved); ValueError otherwise."""
    resolved, base = path.resolve(), folder.resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise ValueError(f"{path} is outside {base}")
    return resolved


def write_files(files: dict[str, str], folder: Path) -> None:
    for name, content in files.items():
        path = inside(folder / name, folder)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        # Private keys, JWT and HMAC secrets: readable by the agent's user only.
        private = name.startswith("certs/") or name == "haproxy.cfg" or name.endswith("_secrets.map")
        path.chmod(0o600 if private else 0o644)


def return_freed_memory() -> None:
    """Hand back to the system the memory that decoding a large snapshot freed. glibc keeps it
    otherwise: an agent that took 100,000 consumers at once stayed at twice the size it needs
    (140 MB, 78 MB after this)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        ctypes.CDLL(None).malloc_trim(0)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Decoding, validating and rendering a snapshot makes a few hundred thousand short-lived
    objects, none of them in a reference cycle, so reference counting frees them all. The cyclic
    collector, triggered by every 700 of them, scanned them again and again with all the agent
    holds: 40 % of the time of each change (1,000 routes, 10,000 consumers: 194 ms with it,
    119 ms without), and more on a busy machine."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Agent:
    def __init__(self, settings: AgentSettings, control_plane: ControlPlane | None = None) -> None:
        self.settings = settings
        self.data = settings.data_dir.resolve()
        self.versions = self.data / "versions"
        self.current = self.data / "current"
        self.run_dir = self.data / "run"
        for folder in (self.data, self.versions, self.run_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.control_plane = control_plane or ControlPlane(
            settings.control_plane_url, settings.token, insecure_http=settings.insecure_http
        )
        self.haproxy = HAProxyProcess(settings.haproxy_bin, self.current / "haproxy.cfg", self.run_dir)
        self.applied_version: int | None = None  # the version serving, reported in heartbeats
        self.seen_version: int | None = None  # the newest version received, applied or refused
        # The SHA-256 of the document serving, as received and recomputed by the agent.
        self.applied_sha: str | None = None
        # The folder HAProxy loaded and what it serves now (maps changed at runtime included).
        self._running: tuple[str, dict[str, str]] | None = None
        self.parser = SnapshotParser()
        self.shards = ShardStore(self.data / "shards")
        # The version whose shards the agent holds (the one serving, when it came in shards):
        # the control plane then sends only the shards that changed since.
        self.held_version: int | None = None
        self.spool = UsageSpool(self.data / "usage", settings.usage_spool)
        self.meter = UsageMeter(self.data / "usage_state.json", self.spool)
        # Final counts of old workers, written by drain readers (`drain_reader.py`).
        self.drained = self.data / "usage" / "drained"
        self.drained.mkdir(parents=True, exist_ok=True)
        self._usage_lock = threading.Lock()  # a read of the counters never straddles a reload
        # The drain readers this agent started, reaped once they exit.
        self._drain_readers: list[subprocess.Popen[bytes]] = []
        self._drained_seen: frozenset[str] = frozenset()  # the files the last read took
        self._usage_wake = threading.Event()  # stopping wakes the counting at once
        self._usage_thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.instance_id: str | None = self._load_instance_id()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # The main loop and the heartbeat thread may both find the agent unregistered: one
        # registration at a time, or a slow first one makes two instances.
        self._registering = threading.RLock()
        # Reports carry the heartbeat with a usage batch, until the control plane shows it takes
        # none (one from before them). When the last heartbeat went, and whether a report took it.
        self._reports_off_until = 0.0  # monotonic time; reports tried again after it
        self._last_heartbeat = time.monotonic()
        self._heartbeat_carried = False

    # --- state on disk ---------------------------------------------------------------------

    def _load_instance_id(self) -> str | None:
        try:
            return str(json.loads((self.data / "instance.json").read_text())["instance_id"])
        except (OSError, ValueError, KeyError):
            return None

    def _last_good(self) -> bytes | None:
        try:
            return (self.data / "last_good.json").read_bytes()
        except OSError:
            return None

    # --- applying a snapshot ---------------------------------------------------------------

    def options_for(self, folder: Path) -> RenderOptions:
        return RenderOptions(
            http_port=self.settings.http_port,
            https_port=self.settings.https_port,
            metrics_port=self.settings.metrics_port,
            bind_address=self.settings.bind_address,
            config_dir=str(folder),
            runtime_socket=str(self.run_dir / "haproxy.sock"),
        )

    def apply(self, body: bytes, *, keep: bool = True, after: int | None = None) -> None:
        """Decode and render the served snapshot `body`, then change HAProxy at runtime when it
        can take the change that way, or check, swap and reload. Raises (and changes nothing)
        when any step fails. With `keep`, the body is kept on disk as the last good snapshot.
        A body naming version `after` (the one the poll asked to be newer than) raises
        NothingNew."""
        started = time.monotonic()
        with collector_paused():
            try:
                snapshot = verify_served(body, self.shards.read)
            except SnapshotRefused as exc:
                if after is not None and exc.version == after:
                    raise NothingNew(f"the control plane answered version {after} again") from exc
                raise ApplyError(
                    str(exc), exc.version, shards_missing=isinstance(exc, ShardsMissing)
                ) from exc
            if after is not None and snapshot.version == after:
                # The control plane answered at once with what the agent has: never spin on it.
                raise NothingNew(f"the control plane answered version {after} again")
            version, sha, how = self._same_content(snapshot) or self._apply(snapshot)
            self.shards.keep(snapshot)
        if keep:
            write_atomically(self.data / "last_good.json", body)
            self.shards.prune(snapshot)
        return_freed_memory()
        with self._lock:
            self.applied_version, self.applied_sha, self.last_error = version, sha, None
            # The version served, even when lower than one seen before (a control plane whose
            # history restarted): the next poll names it, so the two sides agree.
            self.seen_version = version
            self.held_version = version if snapshot.shards else None
        logger.info(
            "applied snapshot version %s (%s) %s in %.0f ms",
            version,
            sha[:12],
            how,
            (time.monotonic() - started) * 1000,
        )

    def _same_content(self, snapshot: VerifiedSnapshot) -> tuple[int, str, str] | None:
        """A new version whose content HAProxy already serves (a rollback, an edit undone):
        nothing to render or reload, only the version to take. None otherwise. The content's
        hash is the one the agent recomputed, never one it was only told."""
        if self.applied_sha is None or self._running is None or snapshot.content_sha256 != self.applied_sha:
            return None
        return snapshot.version, snapshot.content_sha256, "unchanged (same content as the version serving)"

    def _apply(self, verified: VerifiedSnapshot) -> tuple[int, str, str]:
        """(version, SHA-256 of the content, how it was applied)."""
        version, sha = verified.version, verified.content_sha256
        try:
            # Both parts checked (an integer, hex digits); the resolved paths are checked too.
            folder = inside(self.versions / f"v{version}-{sha[:12]}", self.versions)
            staging = inside(folder.with_name(folder.name + ".staging"), self.versions)
        except ValueError as exc:
            raise ApplyError(f"version {version}: {exc}", version) from exc
        shutil.rmtree(staging, ignore_errors=True)
        try:
            snapshot = self.parser.parse(verified.served)
            consumers = self.shards.consumers_of(verified)
            # Paths inside the configuration name the final folder; HAProxy checks the staged one
            # after it is moved there.
            files = render(snapshot, self.options_for(folder), consumers)
            write_files(files, staging)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(staging, folder)
            if self._apply_at_runtime(files, folder):
                how = "at runtime"
            else:
                self._apply_by_reload(files, folder)
                how = "by reload"
        except (RenderError, HAProxyError, OSError, ValueError, KeyError, TypeError) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if not self._points_to(folder):
                shutil.rmtree(folder, ignore_errors=True)
            raise ApplyError(f"version {version}: {exc}", version) from exc
        self._prune(keep=folder)
        return version, sha, how

    def _apply_by_reload(self, files: dict[str, str], folder: Path) -> None:
        """Check, swap and reload. The serving worker, about to become an old one that finishes
        its calls, is handed to a drain reader before the reload: a process of its own that keeps
        the worker alive until its final counts are on disk, however long its calls take and
        whether or not the agent lives that long. No moment passes when only the agent holds it."""
        check_config(self.settings.haproxy_bin, folder / "haproxy.cfg")
        previous = self.current.resolve() if self.current.is_symlink() else None
        with self._usage_lock:
            if self._stop.is_set():  # the stop has read the last counts: HAProxy is not started again
                raise HAProxyError("the agent is stopping")
            running_config = self._running[1].get("haproxy.cfg", "") if self._running else ""
            reader = self._start_drain_reader(drain_limit_s(running_config, files["haproxy.cfg"]))
            held = self._hold_current_worker()
            # Read now: what the old worker counts from here on is read through the master CLI
            # while it lives, and from its drain reader's file once it is gone.
            try:
                self._collect_usage_locked()
            except Exception as exc:  # counting never holds a snapshot back
                logger.warning("usage counters not read before the reload: %s", exc)
            self._point_current_to(folder)
            try:
                self.haproxy.reload()
            except (HAProxyError, OSError):
                if held is not None:
                    held.close()
                if reader is not None:
                    self._end_drain_reader(reader)
                if previous is not None:
                    self._point_current_to(previous)
                raise
            if held is not None:
                self._carry_limit_counters(held, files["haproxy.cfg"])
                held.close()
        self._running = (str(folder), files)

    def _start_drain_reader(self, limit_s: float) -> subprocess.Popen[bytes] | None:
        """A drain reader holding a session on the serving worker (`drain_reader.py`), in a
        session of its own: a SIGKILL of the agent or of its process group leaves it. It waits
        for the worker to be stopping, so it is started before the reload. None when HAProxy
        is not serving yet, or the worker cannot be held: then the old worker is read through
        the master CLI while it lives, and what it answers after the last read is settled as
        unanswered (5xx) once it is gone."""
        if not self.haproxy.running:
            return None
        try:
            session = WorkerSession(self.run_dir / "haproxy.sock")
        except RuntimeAPIError as exc:
            logger.error("the serving worker is not held across the reload: %s", exc)
            return None
        command = [sys.executable, "-m", "gateway_agent.drain_reader", "--fd", str(session.fileno())]
        command += ["--folder", str(self.drained), "--table", USAGE_TABLE, "--limit-s", f"{limit_s:.0f}"]
        try:
            reader = subprocess.Popen(
                command, pass_fds=(session.fileno(),), start_new_session=True, stdin=subprocess.DEVNULL
            )
        except OSError as exc:
            logger.error("no drain reader for HAProxy worker %s: %s", session.pid, exc)
            return None
        finally:
            session.close()  # the drain reader's copy holds the worker
        self._drain_readers.append(reader)
        logger.info("drain reader %s holds HAProxy worker %s", reader.pid, session.pid)
        return reader

    def _end_drain_reader(self, reader: subprocess.Popen[bytes]) -> None:
        """The reload it was started for failed: the worker it holds serves on, unread by it."""
        reader.terminate()
        try:
            reader.wait(timeout=5)
        except subprocess.TimeoutExpired:
            reader.kill()
            reader.wait()
        if reader in self._drain_readers:
            self._drain_readers.remove(reader)

    def _carry_limit_counters(self, old: WorkerSession, config: str) -> None:
        """limit-count's counters, from the worker that served until now to the new one: a
        change of configuration must not give every client a fresh window."""
        try:
            with self.haproxy.runtime_api() as api:
                carried = limit_counters.carry(old, api, config, time.time())
        except RuntimeAPIError as exc:
            logger.warning("rate-limit counters not carried across the reload: %s", exc)
            return
        if carried:
            logger.info("carried %d rate-limit counters across the reload", carried)

    def _hold_current_worker(self) -> WorkerSession | None:
        """A session on the serving worker, to carry its rate-limit counters to the new one after
        the reload (the drain reader holds it through its own). None when HAProxy is not serving
        yet."""
        if not self.haproxy.running:
            return None
        try:
            return WorkerSession(self.run_dir / "haproxy.sock")
        except RuntimeAPIError as exc:
            logger.warning("rate-limit counters will not be carried across the reload: %s", exc)
            return None

    def _apply_at_runtime(self, files: dict[str, str], folder: Path) -> bool:
        """True when HAProxy took the change through its runtime API (no reload). A failure half
        way is repaired by the reload that follows, which loads every map from the new folder."""
        if self._running is None or not self.haproxy.running:
            return False
        running_dir, running_files = self._running
        update = plan_runtime_update(running_files, running_dir, files, str(folder))
        if update is None:
            return False
        swapped: list[str] = []
        try:
            with self.haproxy.runtime_api() as api:
                for swap in update.map_swaps:
                    swapped.append(swap.name)
                    api.replace_map(f"{running_dir}/{swap.name}", swap.entries)
                for backend, server, weight in update.weights:
                    api.set_weight(backend, server, weight)
        except RuntimeAPIError as exc:
            logger.warning("runtime update failed, reloading instead: %s", exc)
            self._restore_maps(running_dir, running_files, swapped)
            return False
        # HAProxy keeps naming the maps by the folder it loaded; a restart reads the new folder.
        self._point_current_to(folder)
        self._running = (running_dir, rebase(files, str(folder), running_dir))
        return True

    def _restore_maps(self, running_dir: str, running_files: dict[str, str], names: list[str]) -> None:
        """Put back what a failed runtime update changed, so that if the reload after it is
        refused too, HAProxy still serves the last good snapshot whole."""
        try:
            with self.haproxy.runtime_api() as api:
                for name in dict.fromkeys(reversed(names)):
                    api.replace_map(f"{running_dir}/{name}", running_files[name].splitlines())
        except RuntimeAPIError as exc:
            logger.error("could not restore the maps HAProxy served: %s", exc)
            self._running = None

    def _point_current_to(self, folder: Path) -> None:
        link = self.data / "current.new"
        link.unlink(missing_ok=True)
        link.symlink_to(folder)
        os.replace(link, self.current)  # atomic: HAProxy never sees a half-made configuration

    def _points_to(self, folder: Path) -> bool:
        try:
            return self.current.resolve() == folder.resolve()
        except OSError:
            return False

    def _prune(self, keep: Path) -> None:
        folders = sorted(
            (p for p in self.versions.iterdir() if p.is_dir() and not p.is_symlink()),
            key=lambda p: p.stat().st_mtime,
        )
        for old in folders[:-KEEP_VERSIONS]:
            if old != keep and not self._points_to(old):
                shutil.rmtree(inside(old, self.versions), ignore_errors=True)

    # --- talking to the control plane ------------------------------------------------------

    def register(self) -> None:
        """Registers, again if need be, under the id the agent has (the control plane keeps it
        when it knows it)."""
        with self._registering:
            answer = self.control_plane.register(
                RegisterRequest(
                    hostname=socket.gethostname(),
                    agent_version=__version__,
                    haproxy_version=haproxy_version(self.settings.haproxy_bin),
                    labels=self.settings.labels,
                    instance_id=self.instance_id,
                )
            )
            self.instance_id = answer.instance_id
            write_atomically(
                self.data / "instance.json", json.dumps({"instance_id": answer.instance_id}).encode(), 0o644
            )

    def ensure_registered(self) -> None:
        """Registers unless the agent has an instance id: once, whichever thread comes first."""
        with self._registering:
            if self.instance_id is None:
                self.register()

    def _heartbeat(self) -> Heartbeat:
        with self._lock:
            return Heartbeat(
                instance_id=str(self.instance_id),
                applied_version=self.applied_version,
                last_error=self.last_error,
            )

    def heartbeat_once(self) -> None:
        self.ensure_registered()
        if not self.control_plane.heartbeat(self._heartbeat()):
            self.register()

    def _heartbeats(self, interval_s: float) -> None:
        """A heartbeat every `interval_s` unless a report carried one meanwhile. While reports
        carry them, this thread waits half an interval more before sending its own: a report a
        little late must not bring a heartbeat beside this one."""
        not_before = 0.0  # a pause after each attempt, however long it took
        while True:
            with self._lock:
                due = self._last_heartbeat + interval_s * (1.5 if self._heartbeat_carried else 1.0)
            if self._stop.wait(max(due, not_before) - time.monotonic()):
                return
            with self._lock:
                if (
                    self._last_heartbeat + interval_s * (1.5 if self._heartbeat_carried else 1.0)
                    > time.monotonic()
                ):
                    continue  # a report carried one while this thread waited
                self._last_heartbeat, self._heartbeat_carried = time.monotonic(), False
            try:
                self.heartbeat_once()
            except Exception as exc:  # the loop must outlive any outage
                logger.warning("heartbeat failed: %s", exc)
            not_before = time.monotonic() + min(interval_s, 1.0)

    def _post_usage(self) -> Callable[[bytes], int]:
        """What delivers the spool's batches for `send_pending`: the first in a report, with the
        heartbeat; the others (a backlog) to /agent/v1/usage."""
        reported = False

        def post(batch_json: bytes) -> int:
            nonlocal reported
            if reported or time.monotonic() < self._reports_off_until:
                return self.control_plane.post_usage(batch_json)
            reported = True
            return self._report(batch_json)

        return post

    def _report(self, batch_json: bytes) -> int:
        """Send the heartbeat and one batch in a report; the status /agent/v1/usage would have
        answered for the batch (202 taken, 400 refused: set aside, other: kept)."""
        self.ensure_registered()
        result = self.control_plane.report(self._heartbeat(), batch_json)
        heartbeat_refused = any(field.startswith("heartbeat") for field in result.refused_fields)
        if result.status in (404, 405) or heartbeat_refused:
            # A control plane from before reports (or one of its replicas, mid-upgrade; or one
            # that reads heartbeats otherwise): each to its own endpoint for a while.
            logger.info(
                "the control plane takes no reports (HTTP %s); heartbeats and usage apart for %.0f s",
                result.status,
                REPORTS_RETRY_S,
            )
            self._reports_off_until = time.monotonic() + REPORTS_RETRY_S
            return self.control_plane.post_usage(batch_json)
        if result.answer is None:
            return result.status
        if result.answer.heartbeat == "stored":
            with self._lock:
                self._last_heartbeat, self._heartbeat_carried = time.monotonic(), True
        elif result.answer.heartbeat == "unknown instance":
            try:
                self.register()
            except Exception as exc:  # the batch was taken all the same; the heartbeats retry
                logger.warning("could not register again: %s", exc)
        return 202 if result.answer.usage == "accepted" else 502

    def poll_once(self) -> bool:
        """One long-poll; True when a snapshot arrived (applied or refused)."""
        body = self.control_plane.poll_config(
            self.seen_version, self.settings.poll_wait_s, have=self.held_version
        )
        if body is None:
            return False
        try:
            self.apply(body, after=self.seen_version)
        except ApplyError as exc:
            if exc.shards_missing and self.held_version is not None:
                # The control plane left out shards the agent lacks: ask for every shard (once:
                # a whole answer that still lacks one is refused as any other).
                logger.warning("%s; asking for the whole snapshot", exc)
                self.held_version = None
                return True
            with self._lock:
                self.last_error = str(exc)[:4000]
                if exc.version is not None:  # remembered, so the poll waits for the next one
                    self.seen_version = exc.version
            logger.error("snapshot refused, still serving the last good one: %s", exc)
            self._report_now()
            if exc.version is None:
                raise  # not a snapshot at all: back off as from any other failure
        return True

    def _report_now(self) -> None:
        try:
            self.heartbeat_once()
        except Exception as exc:
            logger.warning("could not report: %s", exc)

    def serve_last_good(self) -> None:
        body = self._last_good()
        if body is None:
            return
        try:
            self.apply(body, keep=False)
        except ApplyError as exc:
            logger.error("the last good snapshot on disk cannot be applied: %s", exc)

    def collect_usage(self) -> bool:
        with self._usage_lock:
            return self._collect_usage_locked()

    def _collect_usage_locked(self) -> bool:
        """Read every live worker's usage counters, then the final counts drain readers wrote for
        old workers, into spooled batches; then delete the files read.

        The order matters. A worker alive when it is read has its keys in the read; one gone
        before that has written its file already (its drain reader writes before it lets the
        worker go), and the files are listed after. So a generation none of whose keys is read is
        one whose worker is gone without a drain reader (the agent's whole process group killed,
        say): the meter settles it, what it left unanswered counted as 5xx.

        A file is deleted only once the meter has saved the state that accounts for it: a crash
        in between reads it again, and its counts, equal to those saved, add nothing.

        True when the counters were read and accounted for."""
        self._drain_readers = [reader for reader in self._drain_readers if reader.poll() is None]
        if not self.haproxy.running:
            return False
        counters = self._read_workers()
        if counters is None:
            return False
        self._record_usage(counters)
        return True

    def _record_usage(self, counters: dict[str, list[int]]) -> None:
        """Account for a read of the live workers (`counters`; none once HAProxy is gone) and the
        files drained since, then delete those files (see `_collect_usage_locked`)."""
        files = []
        drained: dict[str, list[int]] = {}
        for path in sorted(self.drained.glob("*.table")):
            try:
                merge_reads(drained, parse_usage_table(path.read_text(errors="replace")))
            except OSError as exc:  # kept, for the next read: deleted, its counts would be lost
                logger.error("final usage counts %s unreadable: %s", path.name, exc)
                continue
            files.append(path)
        batches = self.meter.record(
            counters, self.instance_id or socket.gethostname(), time.time(), drained=drained
        )
        for path in files:
            path.unlink(missing_ok=True)
        logger.debug(
            "usage read from live workers (%d keys) and %d drained files (%d keys): %d calls in %d batches",
            len(counters),
            len(files),
            len(drained),
            sum(item.requests for batch in batches for item in batch.items),
            len(batches),
        )

    def _read_workers(self) -> dict[str, list[int]] | None:
        """Every live worker's table: the current worker's, and each old worker's through the
        master CLI (which reads it without keeping it: its drain reader does). None when the read
        cannot be whole: no worker yet, a configuration from before usage counting, the master
        unreachable, or an old worker alive but not read (the next read tries again)."""
        try:
            with self.haproxy.runtime_api() as api:
                pids = api.worker_pids()
                current = api.worker(f"show table {USAGE_TABLE}")
        except RuntimeAPIError as exc:
            logger.warning("usage counters not read: %s", exc)
            return None
        if not pids or f"table: {USAGE_TABLE}" not in current:
            return None
        counters = parse_usage_table(current)
        for pid in pids[1:]:
            table = self._read_old_worker(pid)
            if table is None:
                return None
            merge_reads(counters, table)
        return counters

    def _read_old_worker(self, pid: int) -> dict[str, list[int]] | None:
        """An old worker's table; empty when it is gone (the master ends a session that names a
        worker it no longer has: one session each); None when it lives but was not read."""
        try:
            with self.haproxy.runtime_api() as api:
                answer = api.on_worker(pid, f"show table {USAGE_TABLE}")
            if f"table: {USAGE_TABLE}" in answer or answer.startswith("No such table"):
                return parse_usage_table(answer)
            failure = answer[:200]
        except RuntimeAPIError as exc:
            failure = str(exc)
        try:
            with self.haproxy.runtime_api() as api:
                alive = pid in api.worker_pids()
        except RuntimeAPIError:
            alive = True  # unknown: not taken as gone
        if alive:
            logger.warning("old HAProxy worker %s not read (%s); the next read tries again", pid, failure)
            return None
        return {}  # gone since it was listed: its drain reader's file, if any, is read next

    def _drained_files(self) -> frozenset[str]:
        try:
            return frozenset(name for name in os.listdir(self.drained) if name.endswith(".table"))
        except OSError:
            return frozenset()

    def _send_usage(self, interval_s: float) -> None:
        """Count every `interval_s`, and as soon as a drain reader has written an old worker's
        final counts (the folder is looked at every 0.1 s: a call may keep an old worker for as
        long as its route's timeout), and deliver the usage spool, oldest first: at start (what a
        previous run left), then after each count; after a failure, again with backoff and
        jitter, while counting goes on. A file a read could not take yet (the master busy, HAProxy
        away) is tried again every second."""
        backoff = 0.0
        next_send = 0.0
        next_read = 0.0
        next_retry = 0.0
        while not self._stop.is_set():
            counted = False
            drained = self._drained_files()
            now = time.monotonic()
            if now >= next_read or (drained - self._drained_seen and now >= next_retry):
                read = False
                try:
                    read = self.collect_usage()
                except Exception as exc:  # HAProxy restarting: the next read catches up
                    logger.warning("usage counters not read: %s", exc)
                if read:
                    self._drained_seen = drained  # taken, and deleted
                else:
                    next_retry = time.monotonic() + DRAINED_RETRY_S
                # Give or take a tenth: gateways held up together (a control plane that stalled
                # answering them all) drift apart again instead of reporting in one burst for ever.
                next_read = time.monotonic() + interval_s * random.uniform(0.9, 1.1)  # noqa: S311
                counted = True
            if (counted or backoff) and time.monotonic() >= next_send:
                try:
                    send_pending(self.spool, self._post_usage())
                    backoff = 0.0
                except Exception as exc:  # the control plane away: the spool keeps everything
                    # Capped at a few intervals: the spool drains soon after an outage ends.
                    backoff = min(max(backoff * 2, 1.0), max(3 * interval_s, 5.0))
                    next_send = time.monotonic() + backoff * random.uniform(0.5, 1.5)  # noqa: S311
                    logger.warning(
                        "usage not delivered (%s); retrying in %.1f s", exc, next_send - time.monotonic()
                    )
            wait = min(DRAINED_POLL_S, max(next_read - time.monotonic(), 0.0))
            if backoff:
                wait = min(wait, max(next_send - time.monotonic(), 0.0))
            self._usage_wake.wait(wait)
            self._usage_wake.clear()

    def run(self, heartbeat_interval_s: float = 10) -> None:
        self.serve_last_good()
        threading.Thread(target=self._heartbeats, args=(heartbeat_interval_s,), daemon=True).start()
        self._usage_thread = threading.Thread(
            target=self._send_usage, args=(heartbeat_interval_s,), daemon=True
        )
        self._usage_thread.start()
        backoff = RETRY_FIRST_S
        while not self._stop.is_set():
            try:
                if self.instance_id is None:
                    self.ensure_registered()
                    self._report_now()
                self.poll_once()
                backoff = RETRY_FIRST_S
            except Exception as exc:  # any failure: keep serving the last good snapshot, retry
                # Capped low: a control plane back from an outage must be heard within a couple
                # of seconds. A refused connection costs the control plane nothing; the jitter
                # spreads a fleet's retries.
                refused = isinstance(exc, TokenRefused)
                jitter = random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not secrecy
                delay = (REFUSED_RETRY_S if refused else backoff) * jitter
                if refused:
                    logger.error("%s; asking again in %.1f s", exc, delay)
                else:
                    what = (
                        "nothing new"
                        if isinstance(exc, NothingNew)
                        else "snapshot refused"
                        if isinstance(exc, ApplyError)
                        else "control plane unreachable"
                    )
                    logger.warning("%s (%s); retrying in %.1f s", what, exc, delay)
                self._stop.wait(delay)
                backoff = min(backoff * 2, RETRY_CAP_S)

    def stop(self, stop_haproxy: bool = True) -> None:
        """Stop the agent. With `stop_haproxy` (a gateway shut down, a pod replaced), HAProxy
        finishes the calls it serves and the agent bills every one before it exits: the data
        folder may go with the gateway (a pod's emptyDir), so nothing is left for a next start.
        Without it (the agent alone restarted), HAProxy serves on and the spool waits on disk."""
        self._stop.set()
        self._usage_wake.set()
        if not stop_haproxy:
            self.control_plane.close()
            return
        with self._usage_lock:
            self._stop_serving_locked()
        if self._usage_thread is not None:
            self._usage_thread.join(timeout=STOP_DELIVERY_S)  # not sending beside the last delivery
        self._deliver_spool(time.monotonic() + STOP_DELIVERY_S)
        self.control_plane.close()

    def _stop_serving_locked(self) -> None:
        """Read the counts so far, let HAProxy finish what it serves (a drain reader holding the
        worker until its final counts are on disk, as at a reload), then count those."""
        # It gives up a little before HAProxy is killed: what it read by then is written.
        reader = self._start_drain_reader(STOP_SERVE_S - 2) if self.haproxy.running else None
        try:
            self._collect_usage_locked()
        except Exception as exc:  # the final count below still takes the drained file
            logger.warning("usage counters not read before the stop: %s", exc)
        self.haproxy.stop(timeout=STOP_SERVE_S)
        if reader is not None:
            try:
                reader.wait(timeout=5)  # it writes as the worker goes: moments after HAProxy
            except subprocess.TimeoutExpired:
                logger.error("drain reader %s still running after HAProxy stopped", reader.pid)
        if self.haproxy.running:  # did not stop in time: the next start settles what it served
            logger.error(
                "HAProxy still runs after %.0f s; its last calls are billed at the next start", STOP_SERVE_S
            )
            return
        try:
            # No live worker: the drained file is the serving worker's final count, and what
            # it left unanswered (killed at the limit) is settled as 5xx.
            self._record_usage({})
        except Exception as exc:  # kept on disk: a next start with this data folder counts it
            logger.error("final usage counts not recorded: %s", exc)

    def _deliver_spool(self, deadline: float) -> None:
        """Deliver the spool before `deadline`, retrying a control plane that is away."""
        delay = 0.25
        while True:
            try:
                delivered = send_pending(self.spool, self.control_plane.post_usage)
                logger.info("stopping: %d usage batches delivered, none left", delivered)
                return
            except Exception as exc:
                left = len(self.spool.pending())
                if time.monotonic() + delay >= deadline:
                    logger.error(
                        "stopping with %d usage batches undelivered (%s): they are billed only if "
                        "this data folder is kept for the next start",
                        left,
                        exc,
                    )
                    return
                logger.warning("stopping: usage not delivered (%s); retrying", exc)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)


class NothingNew(RuntimeError):
    """A poll answered at once with the version the agent already has."""


class ApplyError(RuntimeError):
    def __init__(self, message: str, version: int | None = None, *, shards_missing: bool = False) -> None:
        super().__init__(message)
        self.version = version  # None when the body did not even name one
        self.shards_missing = shards_missing
