"""Starts the control plane as one foreground process group.

    python -m saas.launcher run            # `make run`: services, migrations, web, worker, beat, usage consumer
    python -m saas.launcher exec -- CMD    # `make test`: services, then CMD with their URLs

Embedded PostgreSQL and Redis start in the data folder unless DATABASE_URL / REDIS_URL are set.
Ctrl-C (or SIGTERM) stops the demo's gateway and traffic first (the gateway delivers its last
usage as it stops), then the web server and Celery, then Redis and PostgreSQL.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from .secrets import LEGACY_MARKER, django_secret_key, field_encryption_keys, postgres_password
from .services import EmbeddedPostgres, EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent.parent


class ProcessGroup:
    """Children started in sessions of their own, so a terminal Ctrl-C reaches only us and we
    stop them in order."""

    def __init__(self) -> None:
        self.apps: list[tuple[str, subprocess.Popen[bytes]]] = []
        # Stopped before the other apps: the demo's gateway delivers its last usage to the web
        # server as it stops, so the web server must still be there.
        self.first_apps: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.services: list[tuple[str, subprocess.Popen[bytes], int]] = []
        self.stopping = False

    def start_app(
        self, name: str, argv: Sequence[str], env: dict[str, str], *, stops_first: bool = False
    ) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(list(argv), env=env, cwd=ROOT, start_new_session=True)
        (self.first_apps if stops_first else self.apps).append((name, process))
        return process

    def add_service(self, name: str, process: subprocess.Popen[bytes], stop_signal: int) -> None:
        self.services.append((name, process, stop_signal))

    def first_exited(self) -> tuple[str, int] | None:
        for name, process in self.first_apps + self.apps + [(n, p) for n, p, _ in self.services]:
            code = process.poll()
            if code is not None:
                return name, code
        return None

    def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        tiers: list[list[tuple[str, subprocess.Popen[bytes], int]]] = [
            [(n, p, signal.SIGTERM) for n, p in apps] for apps in (self.first_apps, self.apps)
        ]
        for group in [*tiers, self.services]:
            for _, process, stop_signal in group:
                if process.poll() is None:
                    process.send_signal(stop_signal)
            for name, process, _ in group:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    print(f"[launcher] {name} did not stop in 20 s; killing it", flush=True)
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def _start_services(
    group: ProcessGroup, data_dir: Path, pg_port: int, redis_port: int, *, read_legacy_key: bool = False
) -> dict[str, str]:
    env = dict(os.environ)
    data_dir.mkdir(parents=True, exist_ok=True)
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    if not env.get("FIELD_ENCRYPTION_KEY"):
        # Random, made once into the data folder (0600) and reused: never a key from the source.
        env["FIELD_ENCRYPTION_KEY"] = field_encryption_keys(
            data_dir,
            env.get("DJANGO_SECRET_KEY"),
            data_exists=read_legacy_key and (data_dir / "postgres" / "PG_VERSION").exists(),
        )
    if not env.get("DJANGO_SECRET_KEY"):
        env["DJANGO_SECRET_KEY"] = django_secret_key(data_dir)
    if not env.get("DATABASE_URL"):
        postgres = EmbeddedPostgres(data_dir / "postgres", pg_port, postgres_password(data_dir))
        print(
            f"[launcher] starting embedded PostgreSQL on 127.0.0.1:{pg_port} ({postgres.data_dir})",
            flush=True,
        )
        # SIGINT is PostgreSQL's "fast shutdown": roll back open transactions, exit cleanly.
        group.add_service("postgres", postgres.start(logs / "postgres.log"), signal.SIGINT)
        env["DATABASE_URL"] = postgres.url
    if not env.get("REDIS_URL"):
        redis = EmbeddedRedis(data_dir / "redis", redis_port)
        print(f"[launcher] starting embedded Redis on 127.0.0.1:{redis_port}", flush=True)
        group.add_service("redis", redis.start(logs / "redis.log"), signal.SIGTERM)
        env["REDIS_URL"] = redis.url
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], env=env, cwd=ROOT, check=True)


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own loopback URL)
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def _install_stop_handlers(group: ProcessGroup) -> None:
    def handle(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def run(args: argparse.Namespace) -> int:
    group = ProcessGroup()
    _install_stop_handlers(group)
    try:
        env = _start_services(group, args.data_dir, args.pg_port, args.redis_port, read_legacy_key=True)
        print("[launcher] applying migrations", flush=True)
        executor = env.get("SAAS_MIGRATION_EXECUTOR", "template")
        _manage(env, "migrate_schemas", "--noinput", "-v", "0", f"--executor={executor}")
        _manage(env, "ensure_template_schema")
        if (args.data_dir / LEGACY_MARKER).exists() and "," in env["FIELD_ENCRYPTION_KEY"]:
            # Data made when the key was derived from the source: re-encrypted under the new key.
            print("[launcher] re-encrypting secrets under the generated field encryption key", flush=True)
            _manage(env, "rotate_encryption_key")
            (args.data_dir / LEGACY_MARKER).unlink()
            env["FIELD_ENCRYPTION_KEY"] = env["FIELD_ENCRYPTION_KEY"].split(",")[0]
        bind = f"{args.host}:{args.port}"
        env.setdefault("SAAS_PUBLIC_URL", f"http://{bind}")  # links in emails point here
        # Two malloc arenas rather than one per thread of the shared pool: a web process holding
        # thousands of gateways keeps 3 MB less per 1,000 of them (docs/performance.md).
        env.setdefault("MALLOC_ARENA_MAX", "2")
        web = group.start_app(
            "web",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "saas.asgi:application",
                "--host",
                args.host,
                "--port",
                str(args.port),
                "--workers",
                str(args.web_workers),
                "--no-access-log",
                # Longer than a gateway's 10 s between reports (agents keep a connection 25 s):
                # each report reuses its agent's connection instead of opening one.
                "--timeout-keep-alive",
                "30",
            ],
            env,
        )
        group.start_app(
            "worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "saas",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(args.worker_concurrency),
                "--hostname",
                "worker@%h",
            ],
            env,
        )
        group.start_app(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "saas",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(args.data_dir / "celerybeat-schedule"),
            ],
            env,
        )
        group.start_app(
            "usage",
            [sys.executable, "manage.py", "consume_usage", "--name", "usage-1"],
            env,
        )
        base = f"http://{bind}"
        demo = ""
        if _wait_http(f"{base}/readyz", web) and args.demo:
            # The demo gateway runs here: it reaches the control plane on loopback (the agent
            # refuses plain http elsewhere), even when the web server listens on every address.
            local = f"http://127.0.0.1:{args.port}" if _every_address(args.host) else base
            demo = _start_demo(group, env, local, args.data_dir)
        if web.poll() is None:
            print(
                f"\n  Control plane ready at {base}/\n"
                f"  Console:   {base}/console/\n"
                f"  API docs:  {base}/api/docs/\n"
                f"  Sign up:   curl -c cookies.txt -H 'Content-Type: application/json' \\\n"
                f'               -d \'{{"email": "you@example.com", "password": "a long passphrase", '
                f'"organization_name": "Acme"}}\' \\\n'
                f"               {base}/api/v1/auth/signup/\n"
                f"  Data:      {args.data_dir}\n"
                f"{demo}"
                f"  Press Ctrl-C to stop.\n",
                flush=True,
            )
        while (exited := group.first_exited()) is None:
            time.sleep(0.5)
        print(f"[launcher] {exited[0]} exited with status {exited[1]}; stopping", flush=True)
        return 1
    except KeyboardInterrupt:
        print("\n[launcher] stopping", flush=True)
        return 0
    except subprocess.CalledProcessError as exc:
        print(f"[launcher] {' '.join(map(str, exc.cmd))} failed with status {exc.returncode}", flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        group.stop()
        print("[launcher] stopped", flush=True)


def _every_address(host: str) -> bool:
    """Whether `host` is the wildcard address (listening on every address) rather than one."""
    try:
        return not host or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _start_demo(group: ProcessGroup, env: dict[str, str], base: str, data_dir: Path) -> str:
    """The demo organization, a local gateway (agent and HAProxy) and traffic through it."""
    upstream_port, gateway_port = free_port(), free_port()
    answer = subprocess.run(
        [sys.executable, "manage.py", "set_up_demo", "--upstream-port", str(upstream_port)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    demo = json.loads(answer.stdout.strip().splitlines()[-1])
    group.start_app(
        "gateway",
        [
            sys.executable,
            "-m",
            "gateway_agent",
            "run",
            "--control-plane",
            base,
            "--token",
            demo["token"],
            "--data-dir",
            str(data_dir / "demo-gateway"),
            "--http-port",
            str(gateway_port),
            "--https-port",
            "0",
            "--metrics-port",
            "0",
            "--bind",
            "127.0.0.1",
            "--poll-wait",
            "20",
            "--heartbeat-interval",
            "5",
        ],
        env,
        stops_first=True,
    )
    group.start_app(
        "traffic",
        [
            sys.executable,
            "-m",
            "saas.launcher.demo_traffic",
            "--gateway",
            f"http://127.0.0.1:{gateway_port}",
            "--upstream-port",
            str(upstream_port),
            "--keys",
            json.dumps(demo["keys"]),
        ],
        env,
        stops_first=True,
    )
    return (
        f"  Demo:      log in at {base}/console/ as {demo['email']} / {demo['password']}\n"
        f"             gateway http://127.0.0.1:{gateway_port}/ (try /hello), traffic running\n"
    )


def exec_command(args: argparse.Namespace) -> int:
    group = ProcessGroup()
    _install_stop_handlers(group)
    try:
        env = _start_services(group, args.data_dir, args.pg_port, args.redis_port)
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        return subprocess.run(command, env=env, cwd=ROOT).returncode
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        group.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m saas.launcher",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="mode", required=True)

    run_parser = sub.add_parser("run", help="run the whole control plane in the foreground")
    run_parser.add_argument("--host", default=os.environ.get("SAAS_HOST", "127.0.0.1"))
    run_parser.add_argument("--port", type=int, default=int(os.environ.get("SAAS_PORT", "8000")))
    run_parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("SAAS_DATA_DIR", ROOT / ".run" / "data"))
    )
    run_parser.add_argument("--pg-port", type=int, default=int(os.environ.get("SAAS_PG_PORT", "54329")))
    run_parser.add_argument("--redis-port", type=int, default=int(os.environ.get("SAAS_REDIS_PORT", "63799")))
    run_parser.add_argument(
        "--demo", action="store_true", help="also a demo organization, gateway and traffic"
    )
    run_parser.add_argument("--web-workers", type=int, default=int(os.environ.get("SAAS_WEB_WORKERS", "1")))
    run_parser.add_argument(
        "--worker-concurrency", type=int, default=int(os.environ.get("SAAS_WORKER_CONCURRENCY", "2"))
    )

    exec_parser = sub.add_parser("exec", help="start the services, run a command with their URLs, stop")
    exec_parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("SAAS_TEST_DATA_DIR", ROOT / ".run" / "test"))
    )
    exec_parser.add_argument("--pg-port", type=int, default=0, help="0 picks a free port")
    exec_parser.add_argument("--redis-port", type=int, default=0, help="0 picks a free port")
    exec_parser.add_argument("command", nargs=argparse.REMAINDER)

    args = parser.parse_args(argv)
    args.data_dir = args.data_dir.resolve()
    args.pg_port = args.pg_port or free_port()
    args.redis_port = args.redis_port or free_port()
    return run(args) if args.mode == "run" else exec_command(args)


if __name__ == "__main__":
    sys.exit(main())
