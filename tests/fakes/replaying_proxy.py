"""A network path between gateway agents and the control plane that misbehaves on purpose: it
delivers every usage POST twice (as a proxy that retries, or a replay), and it can go down,
closing every connection it gets, as an outage would."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

REPLAYED_PATH = "/agent/v1/usage"


class ReplayingProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, control_plane_url: str) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = httpx.Client(base_url=control_plane_url, timeout=120)
        self.down = threading.Event()
        self.replayed = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.upstream.close()


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: ReplayingProxy

    def _forward(self) -> None:
        if self.server.down.is_set():
            self.connection.shutdown(socket.SHUT_RDWR)  # unreachable: no answer at all
            self.close_connection = True
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
        deliveries = 2 if self.command == "POST" and self.path == REPLAYED_PATH else 1
        try:
            for _ in range(deliveries):
                answer = self.server.upstream.request(self.command, self.path, content=body, headers=headers)
        except httpx.TransportError:
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if deliveries == 2:
            self.server.replayed += 1
        self.send_response(answer.status_code)
        for name in ("Content-Type", "ETag"):
            if name in answer.headers:
                self.send_header(name, answer.headers[name])
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PUT = do_DELETE = _forward

    def log_message(self, *args: object) -> None:
        pass
