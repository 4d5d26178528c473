"""A pass-through HTTP proxy for tests, between a client under test and the real server:

- it records what clients send (`sent`, `actions`): in front of moto's server, it shows what
  boto3 really sent (moto accepts an assume-role without checking its ExternalId);
- it can deliver the requests to some paths twice (`replay_paths`), as a proxy that retries or a
  replay would: every usage POST from an agent, say;
- it can go down (`down`), closing every connection it gets, as an outage would."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import httpx

_HOP_BY_HOP = ("content-length", "transfer-encoding", "connection", "content-encoding", "host")


@dataclass
class Sent:
    method: str
    path: str
    form: dict[str, str]


class ForwardingProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, target: str, *, replay_paths: Iterable[str] = ()) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.target = httpx.Client(base_url=target, timeout=120)
        self.replay_paths = frozenset(replay_paths)
        self.down = threading.Event()
        self.sent: list[Sent] = []
        self.replayed = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def actions(self, action: str) -> list[dict[str, str]]:
        """The form parameters of every query-protocol call of `action` (STS, IAM, CloudFormation)."""
        return [s.form for s in self.sent if s.form.get("Action") == action]

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.target.close()


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: ForwardingProxy

    def _hang_up(self) -> None:
        self.connection.shutdown(socket.SHUT_RDWR)  # no answer at all
        self.close_connection = True

    def _forward(self) -> None:
        if self.server.down.is_set():
            self._hang_up()
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        form = dict(parse_qsl(body.decode(errors="replace"))) if b"=" in body else {}
        self.server.sent.append(Sent(self.command, self.path, form))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        deliveries = 2 if self.path in self.server.replay_paths else 1
        try:
            for _ in range(deliveries):
                answer = self.server.target.request(self.command, self.path, content=body, headers=headers)
        except httpx.TransportError:
            self._hang_up()
            return
        if deliveries == 2:
            self.server.replayed += 1
        self.send_response(answer.status_code)
        for name, value in answer.headers.items():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

    def log_message(self, *args: object) -> None:
        pass
