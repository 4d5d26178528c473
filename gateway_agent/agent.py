"""The agent's work: keep HAProxy serving the cluster's latest snapshot, safely.

- At start, the last good snapshot on disk is served at once, so a gateway restarted while the
  control plane is away still serves.
- It registers, sends a heartbeat every 10 s (applied version, last error), and long-polls for
  snapshots; when the control plane is unreachable it retries with backoff and jitter.
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

import gc
import json
import logging
import os
import random
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__, limit_counters
from .client import ControlPlane
from .durable import write_atomically
from .haproxy import HAProxyError, HAProxyProcess, check_config, haproxy_version
from .metering import TABLE as USAGE_TABLE
from .protocol import (
    Heartbeat,
    RegisterRequest,
    SnapshotParser,
    SnapshotRefused,
    VerifiedSnapshot,
    verify_served,
)
from .renderer import RenderError, RenderOptions, render
from .runtime_api import RuntimeAPIError, WorkerSession
from .runtime_update import plan_runtime_update, rebase
from .usage import SpoolLimits, UsageMeter, UsageSpool, parse_usage_table, send_pending

logger = logging.getLogger("gateway_agent")
KEEP_VERSIONS = 5
# Retries of the long-poll after a failure: 0.25 s, doubling up to 1 s, each times a random
# 0.5 to 1: a change published after an outage reaches the gateway within about 2 s.
RETRY_FIRST_S = 0.25
RETRY_CAP_S = 1.0


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
        self.spool = UsageSpool(self.data / "usage", settings.usage_spool)
        self.meter = UsageMeter(self.data / "usage_state.json", self.spool)
        self._usage_lock = threading.Lock()  # a read of the counters never straddles a reload
        # Old workers held across reloads until their last counts are read.
        self._retiring: list[WorkerSession] = []
        self._usage_wake = threading.Event()  # a reload wakes the counting at once
        self.last_error: str | None = None
        self.instance_id: str | None = self._load_instance_id()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # The main loop and the heartbeat thread may both find the agent unregistered: one
        # registration at a time, or a slow first one makes two instances.
        self._registering = threading.RLock()

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

    def apply(self, body: bytes, *, keep: bool = True) -> None:
        """Decode and render the served snapshot `body`, then change HAProxy at runtime when it
        can take the change that way, or check, swap and reload. Raises (and changes nothing)
        when any step fails. With `keep`, the body is kept on disk as the last good snapshot."""
        started = time.monotonic()
        with collector_paused():
            try:
                snapshot = verify_served(body)
            except SnapshotRefused as exc:
                raise ApplyError(str(exc), exc.version) from exc
            version, sha, how = self._same_content(snapshot) or self._apply(snapshot)
        if keep:
            write_atomically(self.data / "last_good.json", body)
        with self._lock:
            self.applied_version, self.applied_sha, self.last_error = version, sha, None
            # The version served, even when lower than one seen before (a control plane whose
            # history restarted): the next poll names it, so the two sides agree.
            self.seen_version = version
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
            # Paths inside the configuration name the final folder; HAProxy checks the staged one
            # after it is moved there.
            files = render(snapshot, self.options_for(folder))
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
        check_config(self.settings.haproxy_bin, folder / "haproxy.cfg")
        previous = self.current.resolve() if self.current.is_symlink() else None
        with self._usage_lock:
            held = self._hold_current_worker()
            # Read now: if the agent dies while the old worker drains, only its last moments are lost.
            try:
                self._collect_usage_locked()
            except Exception as exc:  # counting never holds a snapshot back; the old worker is held
                logger.warning("usage counters not read before the reload: %s", exc)
            self._point_current_to(folder)
            try:
                self.haproxy.reload()
            except (HAProxyError, OSError):
                if held is not None:
                    held.close()
                if previous is not None:
                    self._point_current_to(previous)
                raise
            if held is not None:
                self._carry_limit_counters(held, files["haproxy.cfg"])
                self._retiring.append(held)
                self._usage_wake.set()
        self._running = (str(folder), files)

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
        """A session on the serving worker, so that after the reload it waits for the agent to
        read its last counts. None when HAProxy is not serving yet."""
        if not self.haproxy.running:
            return None
        try:
            return WorkerSession(self.run_dir / "haproxy.sock")
        except RuntimeAPIError as exc:
            logger.warning("the serving worker is not held across the reload: %s", exc)
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

    def heartbeat_once(self) -> None:
        self.ensure_registered()
        with self._lock:
            beat = Heartbeat(
                instance_id=str(self.instance_id),
                applied_version=self.applied_version,
                last_error=self.last_error,
            )
        if not self.control_plane.heartbeat(beat):
            self.register()

    def _heartbeats(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.heartbeat_once()
            except Exception as exc:  # the loop must outlive any outage
                logger.warning("heartbeat failed: %s", exc)

    def poll_once(self) -> bool:
        """One long-poll; True when a snapshot arrived (applied or refused)."""
        body = self.control_plane.poll_config(self.seen_version, self.settings.poll_wait_s)
        if body is None:
            return False
        if self.seen_version is not None and _version_of(body) == self.seen_version:
            # The control plane answered at once with what the agent has: never spin on it.
            raise NothingNew(f"the control plane answered version {self.seen_version} again")
        try:
            self.apply(body)
        except ApplyError as exc:
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

    def collect_usage(self) -> None:
        with self._usage_lock:
            self._collect_usage_locked()

    def _collect_usage_locked(self) -> None:
        """Read every worker's usage counters (the current one's and those of old workers still
        finishing their requests) into a spooled batch; let go of old workers that are done."""
        if not self.haproxy.running:
            return
        try:
            with self.haproxy.runtime_api() as api:
                pid = api.current_worker_pid()
                tables = [api.worker(f"show table {USAGE_TABLE}")]
        except RuntimeAPIError as exc:
            logger.warning("usage counters not read: %s", exc)
            return
        if pid is None or f"table: {USAGE_TABLE}" not in tables[0]:
            return  # no worker yet, or a configuration from before usage counting
        done = []
        for session in list(self._retiring):
            try:
                idle = session.idle()  # asked first: once idle, its counts cannot change any more
                tables.append(session.command(f"show table {USAGE_TABLE}"))
            except RuntimeAPIError as exc:
                # Gone (a hard stop, a restart): its counts since the last read are lost.
                logger.error("old HAProxy worker %s lost before its last usage read: %s", session.pid, exc)
                self._retiring.remove(session)
                session.close()
                continue
            if idle:
                done.append(session)
        counters: dict[str, list[int]] = {}
        for table in tables:
            counters.update(parse_usage_table(table))
        batches = self.meter.record(counters, self.instance_id or socket.gethostname(), time.time())
        logger.debug(
            "usage read from %d workers (%d keys): %d calls in %d batches",
            len(tables),
            len(counters),
            sum(item.requests for batch in batches for item in batch.items),
            len(batches),
        )
        for session in done:  # its last counts are spooled: it may exit now
            self._retiring.remove(session)
            session.close()

    def _a_retiring_worker_is_done(self) -> bool:
        """Whether an old worker held across a reload serves no one any more (or is gone): its
        last read is due."""
        with self._usage_lock:
            for session in self._retiring:
                try:
                    if session.idle():
                        return True
                except RuntimeAPIError:
                    return True
        return False

    def _send_usage(self, interval_s: float) -> None:
        """Count every `interval_s`, and as soon as an old worker is done (asked every 0.1 s: a
        call may keep it for as long as its route's timeout), and deliver the usage spool, oldest
        first: at start (what a previous run left), then after each count; after a failure, again
        with backoff and jitter, while counting goes on."""
        backoff = 0.0
        next_send = 0.0
        next_read = 0.0
        while not self._stop.is_set():
            counted = False
            if time.monotonic() >= next_read or (self._retiring and self._a_retiring_worker_is_done()):
                try:
                    self.collect_usage()
                except Exception as exc:  # HAProxy restarting: the next read catches up
                    logger.warning("usage counters not read: %s", exc)
                next_read, counted = time.monotonic() + interval_s, True
            if (counted or backoff) and time.monotonic() >= next_send:
                try:
                    send_pending(self.spool, self.control_plane.post_usage)
                    backoff = 0.0
                except Exception as exc:  # the control plane away: the spool keeps everything
                    # Capped at a few intervals: the spool drains soon after an outage ends.
                    backoff = min(max(backoff * 2, 1.0), max(3 * interval_s, 5.0))
                    next_send = time.monotonic() + backoff * random.uniform(0.5, 1.5)  # noqa: S311
                    logger.warning(
                        "usage not delivered (%s); retrying in %.1f s", exc, next_send - time.monotonic()
                    )
            wait = 0.1 if self._retiring else max(next_read - time.monotonic(), 0.0)
            if backoff:
                wait = min(wait, max(next_send - time.monotonic(), 0.0))
            self._usage_wake.wait(wait)
            self._usage_wake.clear()

    def run(self, heartbeat_interval_s: float = 10) -> None:
        self.serve_last_good()
        threading.Thread(target=self._heartbeats, args=(heartbeat_interval_s,), daemon=True).start()
        threading.Thread(target=self._send_usage, args=(heartbeat_interval_s,), daemon=True).start()
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
                delay = backoff * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not secrecy
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
        self._stop.set()
        self._usage_wake.set()
        with self._usage_lock:
            if stop_haproxy:
                self._collect_usage_locked()  # a gateway shut down bills what it served
            for session in self._retiring:
                session.close()
            self._retiring.clear()
        if stop_haproxy:
            self.haproxy.stop()
        self.control_plane.close()


def _version_of(body: bytes) -> int | None:
    try:
        version = json.loads(body)["version"]
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    return version if type(version) is int else None


class NothingNew(RuntimeError):
    """A poll answered at once with the version the agent already has."""


class ApplyError(RuntimeError):
    def __init__(self, message: str, version: int | None = None) -> None:
        super().__init__(message)
        self.version = version  # None when the body did not even name one
