"""The catalog's sections of a cluster's snapshot document (`gateway_agent.protocol.Snapshot`):
global plugins, upstreams, services, routes, consumers, certificates. Compiling reads each table
once with plain value queries, so its cost is linear in the size of the catalog."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.db.models import TextField
from django.db.models.functions import Cast

from saas.gateways.services import GatewayCluster

from .models import Certificate, Consumer, Credential, GlobalPlugin, KeyAuthSecret, Route, Service, Upstream


def _plugins(plugins: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": name, "config": plugins[name]} for name in sorted(plugins)]


def _upstream(row: dict[str, Any]) -> dict[str, Any]:
    document = {
        "id": row["id"],
        "name": row["name"],
        "targets": [
            {"host": t["host"], "port": t["port"], "weight": t.get("weight", 100)} for t in row["targets"]
        ],
        "load_balancing": row["load_balancing"],
        "hash_header": row["hash_header"] or None,
        "scheme": row["scheme"],
        "tls_sni": row["tls_sni"] or None,
        "tls_verify": row["tls_verify"],
        "tls_ca_pem": row["tls_ca_pem"] or None,
        "timeouts": {"connect_s": 5, "send_s": 60, "read_s": 60, **row["timeouts"]},
        "retries": row["retries"],
        "active_health_check": row["active_health_check"],
        "passive_health_check": row["passive_health_check"],
    }
    return document


def _credential(row: dict[str, Any]) -> dict[str, Any]:
    if row["type"] == Credential.KEY_AUTH:
        return {
            "type": "key-auth",
            "id": row["id"],
            "key_sha256": row["key_sha256"],
            "scheme": row["key_scheme"],
        }
    if row["type"] == Credential.JWT_AUTH:
        return {
            "type": "jwt-auth",
            "id": row["id"],
            "key": row["jwt_key"],
            "algorithm": row["jwt_algorithm"],
            "secret_ciphertext": row["jwt_secret_ciphertext"] or None,
            "public_key_pem": row["jwt_public_key_pem"] or None,
        }
    if row["type"] == Credential.HMAC_AUTH:
        return {
            "type": "hmac-auth",
            "id": row["id"],
            "key_id": row["hmac_key_id"],
            "secret_ciphertext": row["hmac_secret_ciphertext"],
        }
    return {
        "type": "basic-auth",
        "id": row["id"],
        "username": row["basic_username"],
        "password_crypt": row["basic_password_crypt"],
    }


_UPSTREAM_FIELDS = (
    "id", "name", "targets", "load_balancing", "hash_header", "scheme", "tls_sni", "tls_verify",
    "tls_ca_pem", "timeouts", "retries", "active_health_check", "passive_health_check",
)  # fmt: skip
_CREDENTIAL_FIELDS = (
    "id", "consumer_id", "type", "key_sha256", "key_scheme", "jwt_key", "jwt_algorithm", "jwt_secret_ciphertext",
    "jwt_public_key_pem", "basic_username", "basic_password_crypt", "hmac_key_id", "hmac_secret_ciphertext",
)  # fmt: skip
_ROUTE_FIELDS = (
    "id", "name", "service_id", "hosts", "paths", "methods", "headers", "priority",
    "strip_path_prefix", "plugins",
)  # fmt: skip


def _global_plugins(cluster: GatewayCluster) -> list[dict[str, Any]]:
    rows = GlobalPlugin.objects.filter(cluster=cluster).order_by("name").values_list("name", "config")
    return [{"name": name, "config": config} for name, config in rows]


def _upstreams(cluster: GatewayCluster) -> list[dict[str, Any]]:
    return [
        _upstream(row)
        for row in Upstream.objects.filter(cluster=cluster).order_by("id").values(*_UPSTREAM_FIELDS)
    ]


def _services(cluster: GatewayCluster) -> list[dict[str, Any]]:
    rows = (
        Service.objects.filter(cluster=cluster).order_by("id").values("id", "name", "upstream_id", "plugins")
    )
    return [
        {
            "id": row["id"],
            "name": row["name"],
            "upstream_id": row["upstream_id"],
            "plugins": _plugins(row["plugins"]),
        }
        for row in rows
    ]


def _routes(cluster: GatewayCluster) -> list[dict[str, Any]]:
    return [
        {**row, "strip_path_prefix": row["strip_path_prefix"] or None, "plugins": _plugins(row["plugins"])}
        for row in Route.objects.filter(cluster=cluster).order_by("id").values(*_ROUTE_FIELDS)
    ]


def consumers_between(
    cluster: GatewayCluster, first: int = 0, end: int | None = None
) -> list[dict[str, Any]]:
    """The consumers whose ids are in [first, end) (by default, all), each with its
    credentials, by id: the whole section, or one of its shards, which is what a consumer write
    recompiles. Rows come as tuples, and the JSON columns as text decoded once per distinct text
    (consumers often share their labels and plugins): `.values()` dictionaries and Django's
    decoding of each column took 200 ms with 10,000 consumers. Consumers may so share these
    values: the document is only read."""
    in_range = Consumer.objects.filter(cluster=cluster, id__gte=first)
    of_consumers = Credential.objects.filter(cluster=cluster, consumer_id__gte=first)
    if end is not None:
        in_range, of_consumers = in_range.filter(id__lt=end), of_consumers.filter(consumer_id__lt=end)
    credentials: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for values in of_consumers.order_by("id").values_list(*_CREDENTIAL_FIELDS):
        row = dict(zip(_CREDENTIAL_FIELDS, values, strict=True))
        credentials[row["consumer_id"]].append(_credential(row))
    rows = in_range.order_by("id").values_list(
        "id", "username", Cast("labels", TextField()), Cast("plugins", TextField()), "enabled"
    )
    labels_of: dict[str, dict[str, str]] = {}
    plugins_of: dict[str, list[dict[str, Any]]] = {}
    consumers = []
    for consumer_id, username, labels, plugins, enabled in rows:
        if labels not in labels_of:
            labels_of[labels] = json.loads(labels)
        if plugins not in plugins_of:
            plugins_of[plugins] = _plugins(json.loads(plugins))
        consumers.append(
            {
                "id": consumer_id,
                "username": username,
                "labels": labels_of[labels],
                "plugins": plugins_of[plugins],
                "credentials": credentials.get(consumer_id, []),
                # Only when false: the documents of clusters that disable no one stay as they were.
                **({} if enabled else {"enabled": False}),
            }
        )
    return consumers


def _certificates(cluster: GatewayCluster) -> list[dict[str, Any]]:
    rows = (
        Certificate.objects.filter(cluster=cluster)
        .order_by("id")
        .values("id", "name", "snis", "certificate_pem", "private_key_ciphertext", "not_after")
    )
    return [{**row, "not_after": row["not_after"].isoformat()} for row in rows]


def _key_auth(cluster: GatewayCluster) -> dict[str, str] | None:
    """The secret the cluster's key-auth keys are hashed with, while any key needs it (so a
    rollback to a version from before it compiles to that version's document again)."""
    hashed = Credential.objects.filter(
        cluster=cluster, type=Credential.KEY_AUTH, key_scheme=Credential.KEY_HMAC_SHA256
    )
    ciphertext = (
        KeyAuthSecret.objects.filter(cluster=cluster).values_list("secret_ciphertext", flat=True).first()
        if hashed.exists()
        else None
    )
    return {"secret_ciphertext": ciphertext} if ciphertext else None


# The catalog's sections of the snapshot document, registered with gateways' publishing when
# Django starts (CatalogConfig.ready).
SECTIONS: dict[str, Callable[[GatewayCluster], Any]] = {
    "global_plugins": _global_plugins,
    "upstreams": _upstreams,
    "services": _services,
    "routes": _routes,
    "consumers": consumers_between,
    "key_auth": _key_auth,
    "certificates": _certificates,
}
# Sections compiled from the same rows as another: a write that changes the one recompiles both.
_COMPILED_WITH = {"consumers": ("key_auth",)}


def with_dependent_sections(sections: list[str]) -> list[str]:
    return [*sections, *(dependent for name in sections for dependent in _COMPILED_WITH.get(name, ()))]
