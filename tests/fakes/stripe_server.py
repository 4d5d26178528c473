"""A fake Stripe API at its HTTP boundary, for the real `stripe` library to talk to: it keeps
the objects billing creates, honours idempotency keys, answers meters with Stripe's fields and
defaults (status, default_aggregation, event_time_window, customer_mapping, value_settings),
refuses a meter event identifier it has seen (as Stripe does), records every request for tests
to assert on, and can fail on purpose."""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    idempotency_key: str | None


@dataclass
class StripeState:
    requests: list[Recorded] = field(default_factory=list)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> object
    by_idempotency: dict[str, dict[str, Any]] = field(default_factory=dict)
    meter_identifiers: set[str] = field(default_factory=set)
    fail_meter_events_after: int | None = None  # accept this many more, then fail


class FakeStripe(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = StripeState()
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def requests_to(self, path: str, method: str = "POST") -> list[Recorded]:
        return [r for r in self.state.requests if r.path == path and r.method == method]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.state.objects.values() if o["object"] == kind]

    def close(self) -> None:
        self.shutdown()
        self.server_close()


_KINDS = {
    "/v1/customers": ("cus", "customer"),
    "/v1/products": ("prod", "product"),
    "/v1/prices": ("price", "price"),
    "/v1/billing/meters": ("mtr", "billing.meter"),
    "/v1/checkout/sessions": ("cs", "checkout.session"),
    "/v1/billing_portal/sessions": ("bps", "billing_portal.session"),
}


def _nest(params: dict[str, str]) -> dict[str, Any]:
    """`a[b][0]=x` form keys into nested objects (lists stay dicts keyed by index)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _meter(created: dict[str, Any]) -> dict[str, Any]:
    """A meter as Stripe answers it: every field present, Stripe's defaults where none was given
    (raw events, mapped by `stripe_customer_id`, valued by `value`)."""
    return {
        "livemode": False,
        "status": "active",
        "status_transitions": {"deactivated_at": None},
        "event_time_window": None,
        **created,
        "customer_mapping": {
            "type": "by_id",
            "event_payload_key": "stripe_customer_id",
            **created.get("customer_mapping", {}),
        },
        "value_settings": {"event_payload_key": "value", **created.get("value_settings", {})},
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeStripe

    def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query))
        state = self.server.state
        with self.server.lock:
            state.requests.append(Recorded("GET", url.path, params, None))
            if url.path == "/v1/prices":
                keys = {v for k, v in params.items() if k.startswith("lookup_keys")}
                data = [o for o in self.server.of_type("price") if o.get("lookup_key") in keys]
            elif url.path == "/v1/billing/meters":
                status = params.get("status")
                data = [m for m in self.server.of_type("billing.meter") if status in (None, m["status"])]
            else:
                self._answer(404, {"error": {"type": "invalid_request_error", "message": "Unknown path."}})
                return
        self._answer(200, {"object": "list", "data": data, "has_more": False, "url": url.path})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        params = dict(parse_qsl(body, keep_blank_values=True))
        key = self.headers.get("Idempotency-Key")
        state = self.server.state
        with self.server.lock:
            state.requests.append(Recorded("POST", url.path, params, key))
            if key and key in state.by_idempotency:
                self._answer(200, state.by_idempotency[key], {"Idempotent-Replayed": "true"})
                return
            if url.path == "/v1/billing/meter_events":
                self._meter_event(params)
                return
            if url.path not in _KINDS:
                self._answer(404, {"error": {"type": "invalid_request_error", "message": "Unknown path."}})
                return
            prefix, kind = _KINDS[url.path]
            ident = f"{prefix}_{next(self.server.ids)}"
            obj: dict[str, Any] = {"id": ident, "object": kind, **_nest(params)}
            if kind.endswith("session"):
                obj["url"] = f"https://stripe.test/{kind}/{ident}"
            if kind == "billing.meter":
                obj = _meter(obj)
            state.objects[ident] = obj
            if key:
                state.by_idempotency[key] = obj
        self._answer(200, obj)

    def _meter_event(self, params: dict[str, str]) -> None:
        state = self.server.state
        identifier = params.get("identifier", "")
        if state.fail_meter_events_after is not None:
            if state.fail_meter_events_after <= 0:
                self._answer(
                    500,
                    {"error": {"type": "api_error", "message": "Something went wrong."}},
                    {"Stripe-Should-Retry": "false"},
                )
                return
            state.fail_meter_events_after -= 1
        if identifier in state.meter_identifiers:
            self._answer(
                400,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": f"An event already exists with identifier {identifier}.",
                    }
                },
                {"Stripe-Should-Retry": "false"},
            )
            return
        state.meter_identifiers.add(identifier)
        event = {"object": "billing.meter_event", **_nest(params)}
        state.objects[f"mev_{identifier}"] = event
        self._answer(200, event)

    def log_message(self, *args: object) -> None:
        pass
