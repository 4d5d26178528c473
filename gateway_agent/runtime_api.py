"""HAProxy's runtime API, reached through the master CLI (`haproxy -W -S <socket>`).

Commands prefixed with `@1` go to the current worker, `@!<pid>` to any worker the master lists,
old ones still finishing their requests included. Talking to the master rather than to a
worker's stats socket matters right after a reload: for a moment the old worker may still hold
the stats socket, and a map changed there would be lost when it exits."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

PROMPT = b"master> "
# The CLI reads a command and its payload into one buffer (tune.bufsize, 16 kB by default).
PAYLOAD_BYTES = 8000


class RuntimeAPIError(RuntimeError):
    pass


def _ask(sock: socket.socket, text: str, prompt: bytes, who: str, answers: int = 1) -> str:
    """Send `answers` commands, a line each (interactive mode), and read their answers, up to
    the prompt that ends the last one."""
    try:
        sock.sendall(text.encode())
        buffer = b""
        while not (buffer.endswith(prompt) and buffer.count(prompt) >= answers):
            data = sock.recv(65536)
            if not data:
                raise RuntimeAPIError(f"{who} closed the connection after {text[:80]!r}")
            buffer += data
    except OSError as exc:
        raise RuntimeAPIError(f"{who} failed: {exc}") from exc
    return buffer[: -len(prompt)].decode(errors="replace")


class RuntimeAPI:
    def __init__(self, master_socket: Path, timeout_s: float = 5.0) -> None:
        self.path = master_socket
        self.timeout_s = timeout_s
        self._socket: socket.socket | None = None

    def __enter__(self) -> RuntimeAPI:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout_s)
        try:
            sock.connect(str(self.path))
        except OSError as exc:
            sock.close()
            raise RuntimeAPIError(f"HAProxy's master CLI is unreachable: {exc}") from exc
        self._socket = sock
        self._exchange("prompt\n")  # interactive mode: one connection, many commands
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _exchange(self, text: str) -> str:
        if self._socket is None:
            raise RuntimeAPIError("Not connected.")
        answer = _ask(self._socket, text, PROMPT, "HAProxy's master CLI")
        return re.sub(r"^(\+ )+", "", answer).strip()  # "+ " marks each payload line read

    def worker(self, command: str, payload: str | None = None) -> str:
        """Run a command on the current worker and return its answer."""
        text = f"@1 {command}"
        text += f" <<\n{payload}\n" if payload is not None else "\n"
        return self._exchange(text)

    def on_worker(self, pid: int, command: str) -> str:
        """Run a command on the worker `pid`, an old one included, and return its answer. A
        worker the master does not know (gone) ends the connection: RuntimeAPIError, and this
        object is done. This session does not keep an old worker alive (a `WorkerSession` does)."""
        return self._exchange(f"@!{int(pid)} {command}\n")

    def worker_each(self, commands: list[str], batch: int = 100) -> list[str]:
        """Run many commands on the current worker, `batch` at a time without waiting for each
        answer (a round trip through the master costs more than most commands); their answers,
        in order."""
        if self._socket is None:
            raise RuntimeAPIError("Not connected.")
        answers: list[str] = []
        for start in range(0, len(commands), batch):
            chunk = commands[start : start + batch]
            text = "".join(f"@1 {command}\n" for command in chunk)
            answer = _ask(self._socket, text, PROMPT, "HAProxy's master CLI", answers=len(chunk))
            # Each answer ends with a prompt: the text after the last one is empty.
            answers += [part.strip() for part in answer.split(PROMPT.decode())[: len(chunk)]]
        return answers

    def worker_pids(self) -> list[int]:
        """The workers' pids as the master lists them (`show proc`): the newest first, then old
        ones still finishing their requests."""
        listing = self._exchange("show proc\n")
        workers = listing.split("# workers", 1)[1] if "# workers" in listing else ""
        pids = []
        for line in workers.split("# programs", 1)[0].splitlines():
            fields = line.split()
            if len(fields) > 1 and fields[1] == "worker" and fields[0].isdigit():
                pids.append(int(fields[0]))
        return pids

    def current_worker_pid(self) -> int | None:
        """The pid of the newest worker."""
        pids = self.worker_pids()
        return pids[0] if pids else None

    def replace_map(self, map_path: str, entries: Iterable[str]) -> None:
        """Swap a map's whole content atomically: fill a new version, then commit it."""
        answer = self.worker(f"prepare map {map_path}")
        match = re.search(r"New version created: (\d+)", answer)
        if match is None:
            raise RuntimeAPIError(f"prepare map {map_path}: {answer}")
        version = match.group(1)
        chunk: list[str] = []
        size = 0
        for entry in [*entries, None]:
            if entry is not None and size + len(entry) < PAYLOAD_BYTES:
                chunk.append(entry)
                size += len(entry) + 1
                continue
            if chunk:
                answer = self.worker(f"add map @{version} {map_path}", "\n".join(chunk) + "\n")
                if answer:
                    raise RuntimeAPIError(f"add map {map_path}: {answer}")
            chunk, size = ([entry], len(entry) + 1) if entry is not None else ([], 0)
        answer = self.worker(f"commit map @{version} {map_path}")
        if answer:
            raise RuntimeAPIError(f"commit map {map_path}: {answer}")

    def set_weight(self, backend: str, server: str, weight: int) -> None:
        answer = self.worker(f"set weight {backend}/{server} {weight}")
        if answer:
            raise RuntimeAPIError(f"set weight {backend}/{server}: {answer}")


class WorkerSession:
    """An interactive session on a worker's own stats socket, which stays with that worker.

    A stopping worker exits as soon as its last client connection ends, and this session is one:
    held across a reload, it keeps the old worker alive once its last call is answered, until
    whoever holds it (the agent for a moment, then a drain reader, `drain_reader.py`) has read
    what the worker counted last and closes it. A master-CLI session (`RuntimeAPI.on_worker`)
    reads an old worker but does not keep it. The session is a plain socket: its file descriptor
    can be handed to another process (`fileno`, `adopt`)."""

    PROMPT = b"\n> "

    def __init__(self, stats_socket: Path | None, timeout_s: float = 5.0, *, fd: int | None = None) -> None:
        if fd is not None:
            self._socket = socket.socket(fileno=fd)
        else:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.settimeout(timeout_s)
        try:
            if fd is None:
                self._socket.connect(str(stats_socket))
                self.command("prompt")
            info = self.command("show info")
        except (OSError, RuntimeAPIError) as exc:
            self._socket.close()
            raise RuntimeAPIError(f"HAProxy's stats socket is unreachable: {exc}") from exc
        match = re.search(r"^Pid: (\d+)", info, re.MULTILINE)
        self.pid = int(match.group(1)) if match else 0

    @classmethod
    def adopt(cls, fd: int, timeout_s: float = 5.0) -> WorkerSession:
        """The session another process opened and handed over as the file descriptor `fd`
        (already interactive)."""
        return cls(None, timeout_s, fd=fd)

    def fileno(self) -> int:
        return self._socket.fileno()

    def command(self, text: str) -> str:
        return _ask(self._socket, f"{text}\n", self.PROMPT, "the worker's stats session").strip()

    def drained(self) -> bool:
        """True once the worker is stopping (a reload replaced it) and serves no client: its
        counters cannot change any more."""
        info = self.command("show info")
        return (
            re.search(r"^Stopping: 1$", info, re.MULTILINE) is not None
            and re.search(r"^CurrConns: 0$", info, re.MULTILINE) is not None
        )

    def close(self) -> None:
        self._socket.close()
