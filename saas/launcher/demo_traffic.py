"""`make demo`'s traffic: a small upstream, and a steady mix of calls through the local gateway
(proxied, mocked, refused, unmatched; two consumers), so the console shows live traffic."""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


class _Backend(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        time.sleep(random.choice((0.002, 0.005, 0.01, 0.03, 0.12)))  # noqa: S311 - a spread of latencies
        body = json.dumps({"path": self.path, "consumer": self.headers.get("X-Consumer-Username")}).encode()
        self.send_response(500 if random.random() < 0.02 else 200)  # noqa: S311
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Upstream(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A gateway reload closes its idle keep-alive connections to this upstream: the default
        handler printed each as a traceback, which a first-time user reads as a failure."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--keys", required=True, help="JSON: consumer -> key")
    parser.add_argument("--rate", type=float, default=20.0, help="calls per second")
    args = parser.parse_args()
    server = _Upstream(("127.0.0.1", args.upstream_port), _Backend)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    keys = list(json.loads(args.keys).values())
    calls = [
        ("/orders/{n}", True),
        ("/orders/{n}", True),
        ("/status", False),
        ("/hello", False),
        ("/orders/{n}", False),  # no key: 401
        ("/nowhere", False),  # no route: 404
    ]
    with httpx.Client(base_url=args.gateway, timeout=5) as client:
        while True:
            path, keyed = random.choice(calls)  # noqa: S311
            headers = {"apikey": random.choice(keys)} if keyed else {}  # noqa: S311
            try:
                client.get(path.format(n=random.randint(1, 500)), headers=headers)  # noqa: S311
            except httpx.TransportError:
                time.sleep(1)  # the gateway is not up yet
            time.sleep(1 / args.rate)


if __name__ == "__main__":
    main()
