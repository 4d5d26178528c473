"""A pass-through HTTP proxy that records what clients send: put in front of moto's server, it
shows what boto3 really sent (moto accepts an assume-role without checking its ExternalId)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import httpx


@dataclass
class Sent:
    method: str
    path: str
    form: dict[str, str]


class RecordingProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, target: str) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.target = httpx.Client(base_url=target, timeout=60)
        self.sent: list[Sent] = []
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
    server: RecordingProxy

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        form = dict(parse_qsl(body.decode(errors="replace"))) if b"=" in body else {}
        self.server.sent.append(Sent(self.command, self.path, form))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        answer = self.server.target.request(self.command, self.path, content=body, headers=headers)
        self.send_response(answer.status_code)
        for name, value in answer.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

    def log_message(self, *args: object) -> None:
        pass
