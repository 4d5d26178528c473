"""The one way the control plane talks to a Kubernetes API: the official `kubernetes` client,
with server-side apply under our field manager, as `kubectl apply --server-side` does."""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from infra.kubernetes.gateway import FIELD_MANAGER

# Plural names of the kinds a gateway deployment uses.
PLURALS = {
    "Namespace": "namespaces",
    "Secret": "secrets",
    "Service": "services",
    "ServiceAccount": "serviceaccounts",
    "ConfigMap": "configmaps",
    "Deployment": "deployments",
    "NetworkPolicy": "networkpolicies",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
}


class KubernetesError(RuntimeError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def object_path(api_version: str, kind: str, name: str, namespace: str | None = None) -> str:
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    scope = "" if kind == "Namespace" or namespace is None else f"/namespaces/{namespace}"
    return f"{base}{scope}/{PLURALS[kind]}/{name}"


class Cluster:
    def __init__(self, host: str, token: str, ca_data: str = "") -> None:
        config = k8s.Configuration()
        config.host = host.rstrip("/")
        config.api_key = {"authorization": token}
        config.api_key_prefix = {"authorization": "Bearer"}
        if ca_data and host.startswith("https"):
            import base64

            ca = tempfile.NamedTemporaryFile(suffix=".crt", delete=False)  # noqa: SIM115 - the client reads it later
            ca.write(base64.b64decode(ca_data))
            ca.close()
            config.ssl_ca_cert = ca.name
        self.api = k8s.ApiClient(config)

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        try:
            request = self.api.param_serialize(
                method,
                path,
                query_params=query or [],
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.api.call_api(*request, _request_timeout=30)
            response.read()
        except ApiException as exc:
            raise KubernetesError(f"{method} {path}: HTTP {exc.status} {exc.reason}", exc.status) from exc
        except (OSError, urllib3.exceptions.HTTPError) as exc:  # the network, not the API
            raise KubernetesError(f"{method} {path}: {exc}") from exc
        data = response.data or b""
        if not 200 <= response.status < 300:
            reason = str(response.reason)
            with contextlib.suppress(TypeError, ValueError, AttributeError):
                reason = json.loads(data).get("message", reason)
            raise KubernetesError(f"{method} {path}: HTTP {response.status} {reason}", response.status)
        return dict(json.loads(data)) if data else {}

    def version(self) -> str:
        return str(self._call("GET", "/version").get("gitVersion", "unknown"))

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply: create or update the fields we manage, taking them over if needed."""
        meta = manifest["metadata"]
        path = object_path(manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace"))
        return self._call(
            "PATCH",
            path,
            body=json.dumps(manifest),
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        try:
            return self._call("GET", object_path(api_version, kind, name, namespace))
        except KubernetesError as exc:
            if exc.status == 404:
                return None
            raise

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """False when it was not there: deleting twice is fine."""
        try:
            self._call("DELETE", object_path(api_version, kind, name, namespace))
            return True
        except KubernetesError as exc:
            if exc.status == 404:
                return False
            raise

    def wait_for_rollout(self, namespace: str, name: str, timeout_s: float, interval_s: float = 2.0) -> str:
        """As `kubectl rollout status`: until the controller has seen the latest spec and every
        replica is updated and available; fails when the progress deadline is exceeded."""
        deadline = time.monotonic() + timeout_s
        while True:
            deployment = self.get("apps/v1", "Deployment", name, namespace)
            if deployment is None:
                raise KubernetesError(f"Deployment {namespace}/{name} is gone.")
            spec, status = deployment.get("spec", {}), deployment.get("status", {})
            for condition in status.get("conditions", []):
                if (
                    condition.get("type") == "Progressing"
                    and condition.get("reason") == "ProgressDeadlineExceeded"
                ):
                    raise KubernetesError(f"Deployment {namespace}/{name} exceeded its progress deadline.")
            want = int(spec.get("replicas", 1))
            if (
                int(status.get("observedGeneration", 0)) >= int(deployment["metadata"].get("generation", 0))
                and int(status.get("updatedReplicas", 0)) >= want
                and int(status.get("availableReplicas", 0)) >= want
                and int(status.get("replicas", 0)) <= want
            ):
                return f"{want} of {want} replicas updated and available"
            if time.monotonic() > deadline:
                raise KubernetesError(
                    f"Deployment {namespace}/{name}: {status.get('updatedReplicas', 0)} of {want} updated, "
                    f"{status.get('availableReplicas', 0)} available after {timeout_s:.0f} s."
                )
            time.sleep(interval_s)

    def load_balancer_hostname(
        self, namespace: str, name: str, timeout_s: float, interval_s: float = 2.0
    ) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            service = self.get("v1", "Service", name, namespace) or {}
            for ingress in service.get("status", {}).get("loadBalancer", {}).get("ingress", []) or []:
                if ingress.get("hostname") or ingress.get("ip"):
                    return str(ingress.get("hostname") or ingress.get("ip"))
            if time.monotonic() > deadline:
                raise KubernetesError(
                    f"Service {namespace}/{name} has no load balancer after {timeout_s:.0f} s."
                )
            time.sleep(interval_s)
