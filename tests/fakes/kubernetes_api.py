"""A fake Kubernetes API server at its HTTP boundary, for the real `kubernetes` client (typed
APIs and `kubernetes.dynamic.DynamicClient`) to talk to, covering the kinds a gateway deployment
uses. It answers server-side apply (PATCH with `application/apply-patch+yaml`), GET of one object
or a collection, DELETE (a Namespace takes its objects with it), `/version` and the discovery
documents DynamicClient reads. Controllers are simulated where a deployer waits on them: a
Deployment rolls out (after `rollout_delay_s`, or fails with `fail_rollout`) and a LoadBalancer
Service gets a hostname. It checks the bearer token, records every request, token and apply for
tests to assert on, and can fail on purpose (`fail_next`).

Server-side apply is modelled per top-level section (`spec`, `data`, `stringData`, ...,
`metadata.labels`, `metadata.annotations`): an apply replaces the sections it sends, keeps the
ones another apply manager owns, and drops the ones nobody owns any more. Applying a section that
another manager owns with a different value is a 409 conflict unless `force=true`, which takes
it over. Real field-level merging (lists keyed by name, ...) is not modelled."""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
SERVER_VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T00:00:00Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass(frozen=True)
class Kind:
    kind: str
    group: str  # "" for the core group
    version: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    status_subresource: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How the real server names the resource in messages: `deployments.apps`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


KINDS: tuple[Kind, ...] = (
    Kind("Namespace", "", "v1", "namespaces", False, ("ns",), True),
    Kind("Secret", "", "v1", "secrets", True),
    Kind("Service", "", "v1", "services", True, ("svc",), True),
    Kind("ServiceAccount", "", "v1", "serviceaccounts", True, ("sa",)),
    Kind("ConfigMap", "", "v1", "configmaps", True, ("cm",)),
    Kind("Deployment", "apps", "v1", "deployments", True, ("deploy",), True),
    Kind("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies", True, ("netpol",)),
    Kind("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets", True, ("pdb",), True),
    Kind("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers", True, ("hpa",), True),
)
KINDS_BY_NAME = {k.kind: k for k in KINDS}
_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

Section = tuple[str, ...]  # ("spec",) or ("metadata", "labels")
Key = tuple[str, str, str]  # (kind, namespace or "", name)


@dataclass
class Apply:
    kind: str
    namespace: str | None
    name: str
    field_manager: str
    force: bool
    body: dict[str, Any]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    content_type: str | None
    authorization: str | None


@dataclass
class _Fault:
    method: str
    kind: str | None
    remaining: int
    status: int
    retry_after: int | None


@dataclass
class _Stored:
    obj: dict[str, Any]
    owners: dict[str, set[Section]] = field(default_factory=dict)  # apply manager -> sections
    owned_at: dict[str, str] = field(default_factory=dict)  # apply manager -> time of its last change


@dataclass
class _Route:
    kind: Kind
    namespace: str | None
    name: str | None  # None: the collection
    subresource: str | None = None


@dataclass
class _Answer:
    status: int
    body: dict[str, Any] | str
    headers: dict[str, str] = field(default_factory=dict)


_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_body(code: int, message: str, reason: str | None = None, **details: Any) -> dict[str, Any]:
    """A Kubernetes `Status` object, as the API server answers errors with."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _REASONS.get(code, "Unknown"),
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sections(obj: Mapping[str, Any]) -> dict[Section, Any]:
    out: dict[Section, Any] = {
        (k,): v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata", "status")
    }
    metadata = obj.get("metadata") or {}
    for part in ("labels", "annotations"):
        if metadata.get(part) is not None:
            out[("metadata", part)] = metadata[part]
    return out


def _fields_v1(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {f"f:{k}": _fields_v1(v) for k, v in value.items()}
    return {}  # scalars and (simplified) lists


def _rs_name(deployment: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(deployment.get("spec", {}).get("template"), sort_keys=True).encode())
    return f"{deployment['metadata']['name']}-{digest.hexdigest()[:10]}"


def _condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
    now = _now()
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
    }


def _matches(labels: Mapping[str, str], selector: str) -> bool:
    """Equality-based label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-separated."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = (s.strip() for s in term.split("!=", 1))
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = (s.strip() for s in term.replace("==", "=").split("=", 1))
            if labels.get(k) != v:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


class FakeKubernetes(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.RLock()
        self.applies: list[Apply] = []
        self.requests: list[Request] = []
        self.tokens: list[str | None] = []  # the Authorization header of every request
        self.expected_token: str | None = None  # when set, anything but `Bearer <it>` is a 401
        self.rollout_delay_s = 0.0  # a Deployment's rollout completes this long after its apply
        self.load_balancer_delay_s = 0.0  # a LoadBalancer Service gets its hostname this long after
        self.fail_rollout = False  # rollouts end in ProgressDeadlineExceeded instead
        self._objects: dict[Key, _Stored] = {}
        self._faults: list[_Fault] = []
        self._due: dict[tuple[str, Key], float] = {}  # (controller, object) -> monotonic time
        self._resource_version = 0
        self._cluster_ips = itertools.count(10)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()

    # For tests to arrange and inspect state without going through HTTP.

    def fail_next(
        self, method: str, kind: str | None, times: int = 1, status: int = 500, retry_after: int | None = None
    ) -> None:
        """The next `times` requests with this method on this kind (None: any request) fail with
        `status` and a Status body (and a Retry-After header if given)."""
        if kind is not None and kind not in KINDS_BY_NAME:
            raise ValueError(f"unknown kind {kind!r}")
        with self.lock:
            self._faults.append(_Fault(method.upper(), kind, times, status, retry_after))

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        with self.lock:
            self._run_controllers()
            stored = self._objects.get((kind, namespace or "", name))
            return copy.deepcopy(stored.obj) if stored else None

    def objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            self._run_controllers()
            return [
                copy.deepcopy(s.obj)
                for (k, ns, _), s in sorted(self._objects.items())
                if k == kind and (namespace is None or ns == namespace)
            ]

    def applies_of(self, kind: str) -> list[Apply]:
        return [a for a in self.applies if a.kind == kind]

    # The API.

    def dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        authorization: str | None,
        content_type: str | None,
        raw: bytes,
    ) -> _Answer:
        with self.lock:
            self.requests.append(Request(method, path, query, content_type, authorization))
            self.tokens.append(authorization)
            if self.expected_token is not None and authorization != f"Bearer {self.expected_token}":
                return _Answer(401, status_body(401, "Unauthorized"))
            route = self._route(path)
            if fault := self._take_fault(method, route):
                headers_out = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                return _Answer(
                    fault.status, status_body(fault.status, f"injected failure ({fault.status})"), headers_out
                )
            self._run_controllers()
            if route is None:
                return _Answer(404, status_body(404, "the server could not find the requested resource"))
            if isinstance(route, _Answer):
                return route if method == "GET" else self._not_allowed(method)
            if route.name is None:
                if method != "GET":
                    return self._not_allowed(method)
                return self._list(route, query)
            if method == "GET":
                return self._read(route)
            if route.subresource is not None:
                return self._not_allowed(method)
            if method == "DELETE":
                return self._delete(route)
            if method == "PATCH":
                return self._apply(route, query, content_type, raw)
            return self._not_allowed(method)

    def _not_allowed(self, method: str) -> _Answer:
        return _Answer(405, status_body(405, f"the server does not allow this method ({method}) here"))

    def _take_fault(self, method: str, route: _Route | _Answer | None) -> _Fault | None:
        kind = route.kind.kind if isinstance(route, _Route) else None
        for fault in self._faults:
            if fault.method == method and fault.kind in (None, kind):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _route(self, path: str) -> _Route | _Answer | None:
        parts = [p for p in path.split("/") if p]
        if parts == ["version"]:
            return _Answer(200, dict(SERVER_VERSION))
        if parts in (["healthz"], ["readyz"], ["livez"]):
            return _Answer(200, "ok")
        if parts == ["api"]:
            return _Answer(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.server_address[1]}"}
                    ],
                },
            )
        if parts == ["apis"]:
            return _Answer(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": self._groups()})
        if len(parts) == 2 and parts[0] == "apis":
            found = next((g for g in self._groups() if g["name"] == parts[1]), None)
            return _Answer(200, {"kind": "APIGroup", "apiVersion": "v1", **found}) if found else None
        if len(parts) >= 2 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        here = {k.plural: k for k in KINDS if k.group == group and k.version == version}
        if not here:
            return None
        if not rest:
            return _Answer(200, self._resource_list(group, version))
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] in here and here[rest[2]].namespaced:
            kind, namespace, tail = here[rest[2]], rest[1], rest[3:]
        elif rest[0] in here:
            kind, namespace, tail = here[rest[0]], None, rest[1:]
            if tail and kind.namespaced:
                return None  # a namespaced object needs its namespace in the path
        else:
            return None
        if not tail:
            return _Route(kind, namespace, None)
        if len(tail) == 1:
            return _Route(kind, namespace, tail[0])
        if len(tail) == 2 and tail[1] == "status" and kind.status_subresource:
            return _Route(kind, namespace, tail[0], "status")
        return None

    def _groups(self) -> list[dict[str, Any]]:
        groups: dict[str, list[str]] = {}
        for k in KINDS:
            if k.group and k.version not in groups.setdefault(k.group, []):
                groups[k.group].append(k.version)
        out = []
        for name, versions in groups.items():
            entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
            out.append({"name": name, "versions": entries, "preferredVersion": dict(entries[0])})
        return out

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources: list[dict[str, Any]] = []
        for k in KINDS:
            if k.group != group or k.version != version:
                continue
            resources.append(
                {
                    "name": k.plural,
                    "singularName": k.kind.lower(),
                    "namespaced": k.namespaced,
                    "kind": k.kind,
                    "verbs": _VERBS,
                    **({"shortNames": list(k.short_names)} if k.short_names else {}),
                }
            )
            if k.status_subresource:
                resources.append(
                    {
                        "name": f"{k.plural}/status",
                        "singularName": "",
                        "namespaced": k.namespaced,
                        "kind": k.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def _not_found(self, kind: Kind, name: str) -> _Answer:
        return _Answer(
            404,
            status_body(
                404, f'{kind.qualified} "{name}" not found', name=name, group=kind.group, kind=kind.plural
            ),
        )

    def _key(self, route: _Route) -> Key:
        assert route.name is not None
        return (route.kind.kind, route.namespace or "", route.name)

    def _read(self, route: _Route) -> _Answer:
        assert route.name is not None
        stored = self._objects.get(self._key(route))
        if stored is None:
            return self._not_found(route.kind, route.name)
        return _Answer(200, copy.deepcopy(stored.obj))

    def _list(self, route: _Route, query: Mapping[str, str]) -> _Answer:
        selector = query.get("labelSelector", "")
        items = []
        for (kind, namespace, _), stored in sorted(self._objects.items()):
            if kind != route.kind.kind or (route.namespace is not None and namespace != route.namespace):
                continue
            if selector and not _matches(stored.obj["metadata"].get("labels") or {}, selector):
                continue
            item = copy.deepcopy(stored.obj)
            del item["apiVersion"], item["kind"]  # as the real server lists them
            items.append(item)
        return _Answer(
            200,
            {
                "kind": f"{route.kind.kind}List",
                "apiVersion": route.kind.api_version,
                "metadata": {"resourceVersion": str(self._resource_version)},
                "items": items,
            },
        )

    def _delete(self, route: _Route) -> _Answer:
        assert route.name is not None
        key = self._key(route)
        stored = self._objects.pop(key, None)
        if stored is None:
            return self._not_found(route.kind, route.name)
        gone = [key]
        if route.kind.kind == "Namespace":
            gone += [k for k in self._objects if k[1] == route.name]
            for k in gone[1:]:
                del self._objects[k]
        for k in gone:
            for controller in ("rollout", "load-balancer"):
                self._due.pop((controller, k), None)
        self._resource_version += 1
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": route.name,
                "group": route.kind.group,
                "kind": route.kind.plural,
                "uid": stored.obj["metadata"]["uid"],
            },
        }
        return _Answer(200, body)

    def _apply(
        self, route: _Route, query: Mapping[str, str], content_type: str | None, raw: bytes
    ) -> _Answer:
        kind, namespace, name = route.kind, route.namespace, route.name
        assert name is not None
        if (content_type or "").split(";")[0].strip() != APPLY_CONTENT_TYPE:
            return _Answer(
                415,
                status_body(415, f"this fake only answers server-side apply ({APPLY_CONTENT_TYPE}) to PATCH"),
            )
        manager = query.get("fieldManager", "")
        if not manager:
            return _Answer(
                400,
                status_body(
                    400,
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                    "is required for apply patch",
                ),
            )
        force = query.get("force", "false").lower() == "true"
        try:
            body = yaml.safe_load(raw.decode() or "null")
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            return _Answer(400, status_body(400, f"error decoding YAML: {error}"))
        if not isinstance(body, dict):
            return _Answer(400, status_body(400, "the apply body must be an object"))
        if body.get("apiVersion") != kind.api_version or body.get("kind") != kind.kind:
            return _Answer(
                400,
                status_body(
                    400,
                    f"the body is {body.get('apiVersion')}/{body.get('kind')}, "
                    f"the URL is for {kind.api_version}/{kind.kind}",
                ),
            )
        metadata = body.get("metadata") or {}
        if metadata.get("name") not in (None, name):
            return _Answer(
                400,
                status_body(
                    400,
                    f"the name of the object ({metadata['name']}) does not match the name on the URL ({name})",
                ),
            )
        if kind.namespaced and metadata.get("namespace") not in (None, namespace):
            return _Answer(
                400,
                status_body(
                    400,
                    "the namespace of the provided object does not match the namespace sent on the request",
                ),
            )
        if not kind.namespaced and metadata.get("namespace"):
            return _Answer(400, status_body(400, f"{kind.kind} is cluster-scoped: no metadata.namespace"))
        if kind.namespaced and ("Namespace", "", namespace or "") not in self._objects:
            return _Answer(
                404,
                status_body(404, f'namespaces "{namespace}" not found', name=namespace, kind="namespaces"),
            )

        key = self._key(route)
        old = self._objects.get(key)
        old_sections = _sections(old.obj) if old else {}
        owners = {m: set(s) for m, s in old.owners.items()} if old else {}
        applied = _sections(body)
        conflicts = [
            (other, section)
            for section, value in applied.items()
            if section in old_sections and old_sections[section] != value
            for other, sections in owners.items()
            if other != manager and section in sections
        ]
        if conflicts and not force:
            causes = [
                {
                    "reason": "FieldManagerConflict",
                    "message": f'conflict with "{other}"',
                    "field": "." + ".".join(section),
                }
                for other, section in conflicts
            ]
            return _Answer(
                409,
                status_body(
                    409,
                    f"Apply failed with {len(causes)} conflict(s): "
                    + "; ".join(f"{c['message']}: {c['field']}" for c in causes),
                    name=name,
                    group=kind.group,
                    kind=kind.plural,
                    causes=causes,
                ),
            )
        for other, section in conflicts:  # forced: the applier takes them over
            owners[other].discard(section)
        owners[manager] = set(applied)
        owners = {m: s for m, s in owners.items() if s}
        kept = {s: v for s, v in old_sections.items() if any(s in owned for owned in owners.values())}
        sections = {**kept, **applied}

        obj: dict[str, Any] = {"apiVersion": kind.api_version, "kind": kind.kind}
        new_metadata: dict[str, Any] = {"name": name}
        if kind.namespaced:
            new_metadata["namespace"] = namespace
        for section, value in sections.items():
            target = new_metadata if section[0] == "metadata" else obj
            target[section[-1]] = copy.deepcopy(value)
        obj["metadata"] = new_metadata
        self._default(kind, obj, old.obj if old else None)

        desired = {k: v for k, v in obj.items() if k not in ("metadata",)}
        old_desired = {k: v for k, v in old.obj.items() if k not in ("metadata", "status")} if old else None
        unchanged = (
            old is not None
            and desired == old_desired
            and {k: new_metadata.get(k) for k in ("labels", "annotations")}
            == {k: old.obj["metadata"].get(k) for k in ("labels", "annotations")}
            and owners == old.owners
        )
        self.applies.append(Apply(kind.kind, namespace, name, manager, force, copy.deepcopy(body)))
        if old is not None and unchanged:
            return _Answer(200, copy.deepcopy(old.obj))

        now = _now()
        owned_at = {m: t for m, t in (old.owned_at if old else {}).items() if m in owners}
        owned_at[manager] = now
        self._resource_version += 1
        generation = 1 if old is None else old.obj["metadata"]["generation"] + (desired != old_desired)
        new_metadata.update(
            uid=old.obj["metadata"]["uid"] if old else str(uuid.uuid4()),
            resourceVersion=str(self._resource_version),
            generation=generation,
            creationTimestamp=old.obj["metadata"]["creationTimestamp"] if old else now,
            managedFields=[
                {
                    "manager": m,
                    "operation": "Apply",
                    "apiVersion": kind.api_version,
                    "time": owned_at[m],
                    "fieldsType": "FieldsV1",
                    "fieldsV1": self._owned_fields(obj, sections_owned),
                }
                for m, sections_owned in sorted(owners.items())
            ],
        )
        if old is not None and "status" in old.obj:
            obj["status"] = old.obj["status"]
        self._objects[key] = _Stored(obj, owners, owned_at)
        self._after_apply(kind, key, obj, generation_changed=old is None or desired != old_desired)
        return _Answer(201 if old is None else 200, copy.deepcopy(obj))

    @staticmethod
    def _owned_fields(obj: Mapping[str, Any], sections: set[Section]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for section in sorted(sections):
            node, value = fields, obj
            for part in section[:-1]:
                node = node.setdefault(f"f:{part}", {})
                value = value.get(part) or {}
            if section[-1] in value:
                node[f"f:{section[-1]}"] = _fields_v1(value[section[-1]])
        return fields

    def _default(self, kind: Kind, obj: dict[str, Any], old: Mapping[str, Any] | None) -> None:
        """Some of the defaulting the real API server does to what it stores."""
        if kind.kind == "Secret":
            string_data = obj.pop("stringData", None) or {}
            if string_data:
                encoded = {k: base64.b64encode(str(v).encode()).decode() for k, v in string_data.items()}
                obj["data"] = {**(obj.get("data") or {}), **encoded}
            obj.setdefault("type", "Opaque")
        elif kind.kind == "Deployment":
            obj.setdefault("spec", {}).setdefault("replicas", 1)
        elif kind.kind == "Service":
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            old_ip = ((old or {}).get("spec") or {}).get("clusterIP")
            if "clusterIP" not in spec:
                n = next(self._cluster_ips)
                spec["clusterIP"] = old_ip or f"10.96.{n // 250}.{n % 250 + 1}"
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            for port in spec.get("ports") or []:
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))

    # Simulated controllers. They act when a request (or an inspection) comes after their due time,
    # so what a waiter sees does not depend on thread scheduling.

    def _after_apply(self, kind: Kind, key: Key, obj: dict[str, Any], generation_changed: bool) -> None:
        if kind.kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        elif kind.kind == "Deployment" and generation_changed:
            previous = obj.get("status") or {}
            replicas = obj["spec"]["replicas"]
            available = previous.get("availableReplicas", 0)
            obj["status"] = {
                "observedGeneration": obj["metadata"]["generation"],
                "replicas": previous.get("replicas", 0),
                "updatedReplicas": 0,
                "readyReplicas": previous.get("readyReplicas", 0),
                "availableReplicas": available,
                "unavailableReplicas": replicas,
                "conditions": [
                    _condition(
                        "Available",
                        "True",
                        "MinimumReplicasAvailable",
                        "Deployment has minimum availability.",
                    )
                    if available
                    else _condition(
                        "Available",
                        "False",
                        "MinimumReplicasUnavailable",
                        "Deployment does not have minimum availability.",
                    ),
                    _condition(
                        "Progressing",
                        "True",
                        "ReplicaSetUpdated",
                        f'ReplicaSet "{_rs_name(obj)}" is progressing.',
                    ),
                ],
            }
            self._due[("rollout", key)] = time.monotonic() + self.rollout_delay_s
        elif kind.kind == "Service":
            ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress")
            if obj["spec"]["type"] != "LoadBalancer":
                obj["status"] = {"loadBalancer": {}}
                self._due.pop(("load-balancer", key), None)
            elif not ingress:
                obj["status"] = {"loadBalancer": {}}
                self._due[("load-balancer", key)] = time.monotonic() + self.load_balancer_delay_s

    def _run_controllers(self) -> None:
        now = time.monotonic()
        for (controller, key), due in list(self._due.items()):
            if due > now:
                continue
            del self._due[(controller, key)]
            stored = self._objects.get(key)
            if stored is None:
                continue
            obj = stored.obj
            if controller == "rollout":
                obj["status"] = self._rolled_out(obj)
            else:
                _, namespace, name = key
                hostname = f"{name}-{namespace}.elb.us-east-1.amazonaws.com"
                obj["status"] = {"loadBalancer": {"ingress": [{"hostname": hostname}]}}
            self._resource_version += 1
            obj["metadata"]["resourceVersion"] = str(self._resource_version)

    def _rolled_out(self, deployment: Mapping[str, Any]) -> dict[str, Any]:
        previous = deployment.get("status") or {}
        replicas = deployment["spec"]["replicas"]
        rs = _rs_name(deployment)
        if self.fail_rollout:
            available = previous.get("availableReplicas", 0)
            return {
                **previous,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "unavailableReplicas": replicas,
                "conditions": [
                    previous["conditions"][0],
                    _condition(
                        "Progressing",
                        "False",
                        "ProgressDeadlineExceeded",
                        f'ReplicaSet "{rs}" has timed out progressing.',
                    ),
                ],
                "availableReplicas": available,
            }
        return {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                _condition(
                    "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."
                ),
                _condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{rs}" has successfully progressed.',
                ),
            ],
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: FakeKubernetes

    def _handle(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = self.server.dispatch(
            self.command,
            url.path,
            query,
            self.headers.get("Authorization"),
            self.headers.get("Content-Type"),
            raw,
        )
        if isinstance(answer.body, str):
            data, content_type = answer.body.encode(), "text/plain; charset=utf-8"
        else:
            data, content_type = json.dumps(answer.body).encode(), "application/json"
        self.send_response(answer.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PATCH = do_DELETE = do_POST = do_PUT = _handle

    def log_message(self, *args: object) -> None:
        pass
