"""The agent's side of the agent API: register, heartbeat, report, long-poll for snapshots."""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from .protocol import Heartbeat, RegisterRequest, RegisterResponse, ReportAnswer

KEEP_ALIVE_S = 25.0


class ControlPlaneError(RuntimeError):
    pass


@dataclass(frozen=True)
class ReportResult:
    """How a report was answered: its HTTP status, what became of its parts (200), and the
    fields a refusal (400) named."""

    status: int
    answer: ReportAnswer | None = None
    refused_fields: tuple[str, ...] = ()


class TokenRefused(ControlPlaneError):
    """The control plane answered 401: it no longer accepts this gateway's cluster token (revoked,
    or rotated and past its grace period). Only a restart with a current token helps."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what}: the control plane refuses this gateway's cluster token (HTTP 401: revoked, or "
            "rotated and past its grace period); restart the gateway with a current token"
        )


def _refused_token(what: str, response: httpx.Response) -> None:
    if response.status_code == 401:
        raise TokenRefused(what)


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_control_plane_url(url: str, *, insecure_http: bool = False) -> None:
    """Refuses (ValueError) a URL the agent must not take snapshots from: anything but https,
    except plain http to loopback, or anywhere when `insecure_http` (--insecure-http,
    GATEWAY_INSECURE_HTTP=1) says so. Over plain http anyone on the way could send the agent a
    configuration and read its token."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"the control plane URL must be https://HOST[:PORT], not {url!r}")
    if parts.scheme == "http" and not insecure_http and not is_loopback(parts.hostname):
        raise ValueError(
            f"refusing the plain-http control plane {url}: use https, or --insecure-http "
            "(GATEWAY_INSECURE_HTTP=1) if the network to it is trusted"
        )


class ControlPlane:
    def __init__(self, url: str, token: str, *, timeout_s: float = 10, insecure_http: bool = False) -> None:
        check_control_plane_url(url, insecure_http=insecure_http)
        self.url = url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "gateway-agent"},
            timeout=timeout_s,
            # Kept across the 10 s between reports (the control plane keeps one 30 s): a fleet's
            # reports do not each open a connection.
            limits=httpx.Limits(
                max_connections=100, max_keepalive_connections=20, keepalive_expiry=KEEP_ALIVE_S
            ),
        )

    def register(self, request: RegisterRequest) -> RegisterResponse:
        response = self._client.post("/agent/v1/register", json=request.model_dump())
        _refused_token("register", response)
        if response.status_code != 201:
            raise ControlPlaneError(f"register: HTTP {response.status_code} {response.text[:200]}")
        return RegisterResponse.model_validate(response.json())

    def heartbeat(self, heartbeat: Heartbeat) -> bool:
        """False when the control plane no longer knows the instance (register again)."""
        response = self._client.post("/agent/v1/heartbeat", json=heartbeat.model_dump())
        _refused_token("heartbeat", response)
        if response.status_code == 404:
            return False
        if response.status_code != 204:
            raise ControlPlaneError(f"heartbeat: HTTP {response.status_code} {response.text[:200]}")
        return True

    def poll_config(self, version: int | None, wait_s: float, have: int | None = None) -> bytes | None:
        """The next snapshot after `version`, as the JSON body it came in (decoded by the agent,
        and kept on disk as it is), or None when none came within `wait_s`. Sharded sections
        come in shards, only those changed since version `have` when the agent holds its shards
        (docs/gateway.md, "Sharded snapshots")."""
        params: dict[str, Any] = {"wait": wait_s, "shards": 1}
        if version is not None:
            params["version"] = version
        if have is not None:
            params["have"] = have
        response = self._client.get("/agent/v1/config", params=params, timeout=wait_s + 10)
        if response.status_code == 304:
            return None
        _refused_token("config", response)
        if response.status_code != 200:
            raise ControlPlaneError(f"config: HTTP {response.status_code} {response.text[:200]}")
        return response.content

    def report(self, heartbeat: Heartbeat, batch_json: bytes) -> ReportResult:
        """POST a heartbeat and one spooled batch (as it is) together: /agent/v1/report."""
        body = b'{"heartbeat":' + heartbeat.model_dump_json().encode() + b',"usage":' + batch_json + b"}"
        response = self._client.post(
            "/agent/v1/report", content=body, headers={"Content-Type": "application/json"}
        )
        _refused_token("report", response)
        if response.status_code == 200:
            return ReportResult(200, ReportAnswer.model_validate_json(response.content))
        refused: tuple[str, ...] = ()
        if response.status_code == 400:
            with contextlib.suppress(ValueError, AttributeError):  # not the JSON of a refusal
                refused = tuple(response.json().get("errors") or ())
        return ReportResult(response.status_code, refused_fields=refused)

    def post_usage(self, batch_json: bytes) -> int:
        """POST one spooled batch as it is; the HTTP status (202 when queued)."""
        response = self._client.post(
            "/agent/v1/usage", content=batch_json, headers={"Content-Type": "application/json"}
        )
        return response.status_code

    def close(self) -> None:
        self._client.close()
