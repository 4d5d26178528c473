"""make bench-plugins: requests per second through the gateway with each authentication plugin,
and with key-auth + limit-count + cors + response-rewrite together, against a plain HAProxy
proxy, in one run and to the same upstream (an nginx answering 200 "ok"). The gateway is the
agent's rendered configuration for one snapshot holding all those routes. wrk runs every target
in turn, ten rounds of 4 s (BENCH_ROUNDS, BENCH_DURATION_S; see bench_gateway); a ratio is the median of its ratios within a round. Then
HAProxy's own instructions per request on each route (callgrind, one thread), which the
machine's load does not move, and on hmac-auth's general path (a header list of the client's
own) as hmac_auth_general_instructions_per_request. The last line is one JSON object; the
target is every figure at least 0.7 of plain_rps."""

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import tempfile
import time
from email.utils import formatdate
from pathlib import Path

import httpx
from passlib.hash import sha512_crypt

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gateway_agent.protocol import Snapshot  # noqa: E402
from gateway_agent.renderer import RenderOptions, render  # noqa: E402
from tests.perf.bench_gateway import (  # noqa: E402
    HAPROXY,
    free_port,
    instructions_per_request,
    ok_upstream,
    plain_haproxy,
    stop,
    wait_port,
    wrk_interleaved,
)

API_KEY = "bench-api-key-0000000001"
KEY_AUTH_SECRET = bytes(range(32))  # the cluster's key-auth hashing secret
JWT_SECRET = "bench-jwt-secret-of-at-least-32-chars"
HMAC_SECRET = "bench-hmac-secret-of-at-least-32-chars"
PASSWORD = "bench password"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_token() -> str:
    # With an expiry, which jwt-auth requires by default (a day: the run is shorter).
    claims = {"key": "bench", "exp": int(time.time()) + 86400}
    signing = f"{_b64url(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{_b64url(json.dumps(claims).encode())}"
    return f"{signing}.{_b64url(hmac.new(JWT_SECRET.encode(), signing.encode(), hashlib.sha256).digest())}"


def hmac_headers(path: str, request_id: str | None = None) -> dict[str, str]:
    """The usual signed headers, `@request-target date`; with `request_id`, X-Request-Id too,
    which takes the plugin's general path (any list of headers)."""
    date = formatdate(usegmt=True)  # valid for the plugin's 300 s clock skew: the run is shorter
    names = "@request-target date" + (" x-request-id" if request_id else "")
    signing = f"bench-hmac\nGET {path}\ndate: {date}\n" + (
        f"x-request-id: {request_id}\n" if request_id else ""
    )
    mac = base64.b64encode(hmac.new(HMAC_SECRET.encode(), signing.encode(), hashlib.sha256).digest()).decode()
    return {
        "Date": date,
        **({"X-Request-Id": request_id} if request_id else {}),
        "Authorization": f'Signature keyId="bench-hmac",algorithm="hmac-sha256",headers="{names}",signature="{mac}"',
    }


def snapshot(upstream_port: int) -> Snapshot:
    def route(route_id: int, path: str, plugins: dict) -> dict:
        return {
            "id": route_id,
            "name": path.strip("/"),
            "service_id": 1,
            "paths": [{"type": "prefix", "value": path}],
            "plugins": [{"name": name, "config": config} for name, config in plugins.items()],
        }

    return Snapshot.model_validate(
        {
            "cluster_id": 1,
            "upstreams": [{"id": 1, "name": "ok", "targets": [{"host": "127.0.0.1", "port": upstream_port}]}],
            "services": [{"id": 1, "name": "ok", "upstream_id": 1}],
            "routes": [
                route(1, "/key", {"key-auth": {}}),
                route(2, "/jwt", {"jwt-auth": {}}),
                route(3, "/basic", {"basic-auth": {}}),
                route(4, "/hmac", {"hmac-auth": {}}),
                route(
                    5,
                    "/stack",
                    {
                        "key-auth": {},
                        "limit-count": {"count": 1_000_000_000, "time_window": 3600, "key": "consumer"},
                        "cors": {"allow_origins": ["https://app.example.com"]},
                        "response-rewrite": {"headers": {"set": {"X-Frame-Options": "DENY"}}},
                    },
                ),
            ],
            "key_auth": {"secret": base64.b64encode(KEY_AUTH_SECRET).decode()},
            "consumers": [
                {
                    "id": 1,
                    "username": "bench",
                    "credentials": [
                        {
                            "type": "key-auth",
                            "id": 1,
                            "key_sha256": hmac.new(
                                KEY_AUTH_SECRET, API_KEY.encode(), hashlib.sha256
                            ).hexdigest(),
                            "scheme": "hmac-sha256",
                        },
                        {
                            "type": "jwt-auth",
                            "id": 2,
                            "key": "bench",
                            "algorithm": "HS256",
                            "secret": JWT_SECRET,
                        },
                        {
                            "type": "basic-auth",
                            "id": 3,
                            "username": "bench",
                            "password_crypt": sha512_crypt.using(rounds=5000).hash(PASSWORD),
                        },
                        {"type": "hmac-auth", "id": 4, "key_id": "bench-hmac", "secret": HMAC_SECRET},
                    ],
                }
            ],
        }
    )


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-plugins-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        upstream, upstream_port = ok_upstream(work)
        processes.append(upstream)
        plain_port, gateway_port = free_port(), free_port()
        processes.append(plain_haproxy(work, plain_port, upstream_port))
        folder = work / "gateway"
        options = RenderOptions(
            http_port=gateway_port,
            https_port=None,
            metrics_port=None,
            bind_address="127.0.0.1",
            config_dir=str(folder),
            runtime_socket=str(work / "gateway.sock"),
        )
        for name, content in render(snapshot(upstream_port), options).items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(content)
        processes.append(subprocess.Popen([HAPROXY, "-db", "-f", str(folder / "haproxy.cfg")]))
        for port in (upstream_port, plain_port, gateway_port):
            wait_port(port)

        gateway = f"http://127.0.0.1:{gateway_port}"
        basic = base64.b64encode(f"bench:{PASSWORD}".encode()).decode()
        requests = {
            "key_auth": ("/key", {"apikey": API_KEY}),
            "jwt_auth": ("/jwt", {"Authorization": f"Bearer {jwt_token()}"}),
            "basic_auth": ("/basic", {"Authorization": f"Basic {basic}"}),
            "hmac_auth": ("/hmac", hmac_headers("/hmac")),
            "stack": ("/stack", {"apikey": API_KEY, "Origin": "https://app.example.com"}),
        }
        # Every route must pass its plugin, or the figures measure refusals.
        for name, (path, headers) in requests.items():
            status = httpx.get(f"{gateway}{path}", headers=headers).status_code
            if status != 200:
                raise SystemExit(f"{name}: {path} answered {status}, not 200")
        runs = wrk_interleaved(
            {
                "plain": (f"http://127.0.0.1:{plain_port}/plain", {}),
                **{name: (f"{gateway}{path}", headers) for name, (path, headers) in requests.items()},
            }
        )
        result: dict[str, float] = {f"{name}_rps": round(rps) for name, rps in runs.rps.items()}
        result |= {f"{name}_vs_plain": round(runs.ratio(name, "plain"), 3) for name in requests}
        for process in processes[1:]:  # the proxies, again one at a time under callgrind
            process.terminate()
            process.wait(timeout=20)
        del processes[1:]
        plain_ir = instructions_per_request(work / "plain.cfg", plain_port, {"plain": ("/plain", {})}, work)
        # Instructions only: the general path of hmac-auth, with a header list of the client's own.
        general = {"hmac_auth_general": ("/hmac", hmac_headers("/hmac", request_id="r-1"))}
        gateway_ir = instructions_per_request(folder / "haproxy.cfg", gateway_port, requests | general, work)
        result |= {
            f"{name}_instructions_per_request": round(value)
            for name, value in (plain_ir | gateway_ir).items()
        }
        print(json.dumps(result))
    finally:
        stop(processes, work)


if __name__ == "__main__":
    main()
