"""The catalog's part of rolling a cluster back to an earlier snapshot (saas.gateways.publishing
.roll_back): its rows are restored to what that snapshot holds (same ids, same hashed and
encrypted secrets), so the version published next has the old one's document and hash. Fields a
snapshot does not carry (descriptions) keep their current values."""

from __future__ import annotations

from typing import Any

from django.db.models import Model

from saas.gateways.services import Author, GatewayCluster

from .key_material import certificate_fingerprint
from .models import Certificate, Consumer, Credential, GlobalPlugin, Route, Service, Upstream


def _plugins(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {item["name"]: item["config"] for item in items}


def _sync(
    model: type[Model], cluster: GatewayCluster, rows: dict[int, dict[str, Any]], author: Author
) -> None:
    """Make the cluster's rows of `model` exactly `rows` (id -> field values). Rows that change
    take their next revision, so an edit begun before the rollback is refused as stale."""
    manager = model._default_manager
    manager.filter(cluster=cluster).exclude(pk__in=list(rows)).delete()
    existing = {obj.pk: obj for obj in manager.filter(cluster=cluster, pk__in=list(rows))}
    for pk, fields in rows.items():
        obj = existing.get(pk)
        if obj is not None and all(getattr(obj, name) == value for name, value in fields.items()):
            continue  # as it was: same revision
        obj = obj or model(pk=pk, cluster=cluster)
        for name, value in fields.items():
            setattr(obj, name, value)
        obj.updated_by = author.label  # type: ignore[attr-defined]
        obj.save()


def restore_catalog(cluster: GatewayCluster, document: dict[str, Any], author: Author) -> None:
    """Registered with gateways' rollback (CatalogConfig.ready): the catalog's rows as `document`
    holds them; gateways then audits the rollback and publishes."""
    # Children first where rows go away, parents first where they come back.
    routes = {r["id"]: r for r in document["routes"]}
    services = {s["id"]: s for s in document["services"]}
    consumers = {c["id"]: c for c in document["consumers"]}
    Route.objects.filter(cluster=cluster).exclude(pk__in=list(routes)).delete()
    Service.objects.filter(cluster=cluster).exclude(pk__in=list(services)).delete()
    Credential.objects.filter(cluster=cluster).exclude(
        pk__in=[cred["id"] for c in consumers.values() for cred in c["credentials"]]
    ).delete()
    GlobalPlugin.objects.filter(cluster=cluster).exclude(
        name__in=[p["name"] for p in document["global_plugins"]]
    ).delete()
    for plugin in document["global_plugins"]:
        kept = GlobalPlugin.objects.filter(cluster=cluster, name=plugin["name"]).first()
        if kept is None or kept.config != plugin["config"]:
            kept = kept or GlobalPlugin(cluster=cluster, name=plugin["name"])
            kept.config, kept.updated_by = plugin["config"], author.label
            kept.save()
    _sync(
        Upstream,
        cluster,
        {
            u["id"]: {
                "name": u["name"],
                "targets": u["targets"],
                "load_balancing": u["load_balancing"],
                "hash_header": u["hash_header"] or "",
                "scheme": u["scheme"],
                "tls_sni": u["tls_sni"] or "",
                "tls_verify": u["tls_verify"],
                "tls_ca_pem": u["tls_ca_pem"] or "",
                "timeouts": u["timeouts"],
                "retries": u["retries"],
                "active_health_check": u["active_health_check"],
                "passive_health_check": u["passive_health_check"],
            }
            for u in document["upstreams"]
        },
        author,
    )
    _sync(
        Service,
        cluster,
        {
            pk: {"name": s["name"], "upstream_id": s["upstream_id"], "plugins": _plugins(s["plugins"])}
            for pk, s in services.items()
        },
        author,
    )
    _sync(
        Route,
        cluster,
        {
            pk: {
                "name": r["name"],
                "service_id": r["service_id"],
                "hosts": r["hosts"],
                "paths": r["paths"],
                "methods": r["methods"],
                "headers": r["headers"],
                "priority": r["priority"],
                "strip_path_prefix": r["strip_path_prefix"] or "",
                "plugins": _plugins(r["plugins"]),
            }
            for pk, r in routes.items()
        },
        author,
    )
    _sync(
        Consumer,
        cluster,
        {
            pk: {
                "username": c["username"],
                "labels": c["labels"],
                "plugins": _plugins(c["plugins"]),
                "enabled": c.get("enabled", True),
            }
            for pk, c in consumers.items()
        },
        author,
    )
    credentials: dict[int, dict[str, Any]] = {}
    for consumer in consumers.values():
        for cred in consumer["credentials"]:
            fields: dict[str, Any] = {"consumer_id": consumer["id"], "type": cred["type"]}
            if cred["type"] == "key-auth":
                # A document from before key hashing had schemes holds SHA-256 digests.
                fields |= {"key_sha256": cred["key_sha256"], "key_scheme": cred.get("scheme", "sha256")}
            elif cred["type"] == "jwt-auth":
                fields |= {
                    "jwt_key": cred["key"],
                    "jwt_algorithm": cred["algorithm"],
                    "jwt_secret_ciphertext": cred["secret_ciphertext"] or "",
                    "jwt_public_key_pem": cred["public_key_pem"] or "",
                }
            elif cred["type"] == "hmac-auth":
                fields |= {"hmac_key_id": cred["key_id"], "hmac_secret_ciphertext": cred["secret_ciphertext"]}
            else:
                fields |= {"basic_username": cred["username"], "basic_password_crypt": cred["password_crypt"]}
            credentials[cred["id"]] = fields
    _sync(Credential, cluster, credentials, author)
    _sync(
        Certificate,
        cluster,
        {
            c["id"]: {
                "name": c["name"],
                "snis": c["snis"],
                "certificate_pem": c["certificate_pem"],
                "private_key_ciphertext": c["private_key_ciphertext"],
                "not_after": c["not_after"],
                "fingerprint_sha256": certificate_fingerprint(c["certificate_pem"]),
            }
            for c in document["certificates"]
        },
        author,
    )
