"""gateway-agent run | check SNAPSHOT.json | version"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from . import __version__
from .agent import Agent, AgentSettings, write_files
from .client import check_control_plane_url
from .haproxy import HAProxyError, check_config
from .protocol import Snapshot, SnapshotParser, verify_served
from .renderer import RenderError, RenderOptions, render
from .shard_store import ShardStore
from .usage import SpoolLimits


def _env_int(name: str, default: int | None) -> int | None:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    return None if value == "off" else int(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gateway-agent", description="Keeps HAProxy in step with the control plane."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the agent (flags or GATEWAY_* environment variables)")
    run.add_argument(
        "--control-plane", default=os.environ.get("GATEWAY_CONTROL_PLANE"), help="GATEWAY_CONTROL_PLANE"
    )
    run.add_argument("--token", default=os.environ.get("GATEWAY_TOKEN"), help="GATEWAY_TOKEN")
    run.add_argument(
        "--insecure-http",
        action="store_true",
        default=os.environ.get("GATEWAY_INSECURE_HTTP", "") in ("1", "true", "yes"),
        help="allow a plain-http control plane off loopback (GATEWAY_INSECURE_HTTP=1); "
        "anyone on the way could then configure the gateway",
    )
    run.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("GATEWAY_DATA_DIR", "/var/lib/gateway-agent"))
    )
    run.add_argument("--haproxy-bin", default=os.environ.get("GATEWAY_HAPROXY_BIN", "haproxy"))
    run.add_argument("--http-port", type=int, default=_env_int("GATEWAY_HTTP_PORT", 8080))
    run.add_argument("--https-port", type=int, default=_env_int("GATEWAY_HTTPS_PORT", 8443))
    run.add_argument("--metrics-port", type=int, default=_env_int("GATEWAY_METRICS_PORT", 9101))
    run.add_argument("--bind", default=os.environ.get("GATEWAY_BIND", "*"))
    run.add_argument("--poll-wait", type=float, default=float(os.environ.get("GATEWAY_POLL_WAIT_S", "30")))
    run.add_argument(
        "--heartbeat-interval", type=float, default=float(os.environ.get("GATEWAY_HEARTBEAT_S", "10"))
    )
    run.add_argument(
        "--usage-spool-mb", type=int, default=int(os.environ.get("GATEWAY_USAGE_SPOOL_MB", "512"))
    )
    run.add_argument(
        "--usage-spool-hours", type=float, default=float(os.environ.get("GATEWAY_USAGE_SPOOL_HOURS", "168"))
    )
    check = sub.add_parser("check", help="render a snapshot and validate it with haproxy -c, offline")
    check.add_argument("snapshot", type=Path)
    check.add_argument("--haproxy-bin", default=os.environ.get("GATEWAY_HAPROXY_BIN", "haproxy"))
    sub.add_parser("version")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    if args.command == "version":
        print(__version__)
        return 0
    if args.command == "check":
        return _check(args.snapshot, args.haproxy_bin)
    if not args.control_plane or not args.token:
        parser.error("run needs --control-plane and --token (or GATEWAY_CONTROL_PLANE and GATEWAY_TOKEN)")
    try:
        check_control_plane_url(args.control_plane, insecure_http=args.insecure_http)
    except ValueError as exc:
        parser.error(str(exc))
    if args.insecure_http and args.control_plane.startswith("http:"):
        logging.getLogger("gateway_agent").warning("plain-http control plane allowed by --insecure-http")
    agent = Agent(
        AgentSettings(
            control_plane_url=args.control_plane,
            token=args.token,
            data_dir=args.data_dir,
            haproxy_bin=args.haproxy_bin,
            http_port=args.http_port,
            https_port=args.https_port,
            metrics_port=args.metrics_port,
            bind_address=args.bind,
            poll_wait_s=args.poll_wait,
            insecure_http=args.insecure_http,
            usage_spool=SpoolLimits(
                max_bytes=args.usage_spool_mb * 1024 * 1024, max_age_s=args.usage_spool_hours * 3600
            ),
        )
    )

    return _run_until_signalled(agent, args.heartbeat_interval)


def _run_until_signalled(agent: Agent, heartbeat_interval_s: float) -> int:
    """The agent's loop runs on a thread of its own; the main thread waits for SIGTERM or SIGINT
    and then stops the agent. A handler that stopped it itself would run on whatever the main
    thread was doing: mid-reload, that thread holds the lock the stop takes, and waits forever.

    The loop ending by itself is a crash: HAProxy is left serving (the next start adopts it) and
    the exit status says so."""
    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    loop = threading.Thread(
        target=agent.run,
        kwargs={"heartbeat_interval_s": heartbeat_interval_s},
        name="agent-loop",
        daemon=True,
    )
    loop.start()
    while not stopping.wait(0.5):
        if not loop.is_alive():
            logging.getLogger("gateway_agent").error("the agent's loop ended; HAProxy is left serving")
            return 1
    agent.stop()
    return 0


def _check(path: Path, haproxy_bin: str) -> int:
    try:
        body = path.read_bytes()
        data = json.loads(body)
        consumers = None
        if isinstance(data, dict) and "shards" in data:
            # A snapshot in shards, as the agent keeps it: the shards it left out are beside it.
            store = ShardStore(path.parent / "shards")
            verified = verify_served(body, store.read)
            snapshot = SnapshotParser().parse(verified.served)
            consumers = store.consumers_of(verified)
        else:
            document = data.get("document", data)  # a served snapshot or a bare document
            snapshot = Snapshot.model_validate(document)
        with tempfile.TemporaryDirectory() as folder:
            options = RenderOptions(config_dir=folder, runtime_socket=f"{folder}/haproxy.sock")
            write_files(render(snapshot, options, consumers), Path(folder))
            check_config(haproxy_bin, Path(folder) / "haproxy.cfg")
    except (OSError, ValueError, RenderError, HAProxyError) as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
