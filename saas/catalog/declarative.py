"""Declarative configuration, like Kong's decK: export a cluster's catalog as one document, and
apply a document so the cluster matches it (creating, updating and deleting), with a dry run that
shows the plan first. Applying goes through the same service functions as the REST API, so both
refuse the same things with the same messages, and publishes a single snapshot.

Secrets are never exported. Credentials appear by what identifies them (the key's digest, the
JWT `key` claim, the basic-auth username) and certificates without their private key; on apply,
an entry without its secret keeps the secret the cluster already has, and a new one must bring
its secret. A key-auth key may come as its plain `key_sha256` alone (stored as such, since the
gateway only needs a digest); a `key_hmac_sha256` names a key of this cluster, hashed with its
secret, and cannot add one."""

from __future__ import annotations

from functools import partial
from typing import Any

import yaml
from django.db import transaction

from core.errors import InvalidInput, StaleRevision
from saas.gateways.publishing import publish
from saas.gateways.services import Author, ConfigSnapshot, GatewayCluster
from tenants.audit import record_audit

from . import services, specs
from .key_material import key_hmac_hex, sha256_hex
from .models import Certificate, Consumer, Credential, GlobalPlugin, KeyAuthSecret, Route, Service, Upstream

FORMAT_VERSION = 1
TOP_LEVEL = {"format_version", "plugins", "upstreams", "services", "routes", "consumers", "certificates"}


class _Rollback(Exception):
    pass


def _credential_export(credential: Credential) -> dict[str, Any]:
    if credential.type == Credential.KEY_AUTH:
        if credential.key_scheme == Credential.KEY_HMAC_SHA256:
            return {"type": "key-auth", "key_hmac_sha256": credential.key_sha256}
        return {"type": "key-auth", "key_sha256": credential.key_sha256}
    if credential.type == Credential.JWT_AUTH:
        exported: dict[str, Any] = {
            "type": "jwt-auth",
            "key": credential.jwt_key,
            "algorithm": credential.jwt_algorithm,
        }
        if credential.jwt_public_key_pem:
            exported["public_key"] = credential.jwt_public_key_pem
        return exported
    if credential.type == Credential.HMAC_AUTH:
        return {"type": "hmac-auth", "key_id": credential.hmac_key_id}
    return {"type": "basic-auth", "username": credential.basic_username}


def export_config(cluster: GatewayCluster) -> dict[str, Any]:
    consumers = Consumer.objects.filter(cluster=cluster).prefetch_related("credentials").order_by("username")
    return {
        "format_version": FORMAT_VERSION,
        "plugins": {p.name: p.config for p in GlobalPlugin.objects.filter(cluster=cluster).order_by("name")},
        "upstreams": [
            services.upstream_spec(u) for u in Upstream.objects.filter(cluster=cluster).order_by("name")
        ],
        "services": [
            services.service_spec(s)
            for s in Service.objects.filter(cluster=cluster).select_related("upstream").order_by("name")
        ],
        "routes": [
            services.route_spec(r)
            for r in Route.objects.filter(cluster=cluster).select_related("service").order_by("name")
        ],
        "consumers": [
            {
                **services.consumer_spec(c),
                "credentials": [_credential_export(cr) for cr in c.credentials.order_by("id")],
            }
            for c in consumers
        ],
        "certificates": [
            {"name": c.name, "certificate": c.certificate_pem}
            for c in Certificate.objects.filter(cluster=cluster).order_by("name")
        ],
    }


def export_yaml(cluster: GatewayCluster) -> str:
    return str(yaml.safe_dump(export_config(cluster), sort_keys=False, allow_unicode=True))


def load_mapping(body: Any) -> dict[str, Any] | None:
    """A request body as a mapping: already parsed (JSON or YAML content types) or YAML text.
    None when it is something else (a list, a number)."""
    if isinstance(body, dict):
        return body
    if not isinstance(body, str | bytes):
        return None
    try:
        loaded = yaml.safe_load(body)
    except yaml.YAMLError as exc:
        raise InvalidInput.field("document", f"Not valid YAML or JSON: {exc}") from exc
    return loaded if isinstance(loaded, dict) else None


def parse_document(text: Any) -> dict[str, Any]:
    document = load_mapping(text)
    if document is None:
        raise InvalidInput.field("document", "Expected a mapping with upstreams, services, routes, ...")
    unknown = sorted(set(document) - TOP_LEVEL)
    if unknown:
        raise InvalidInput(
            {name: ["Unknown section."] for name in unknown}, detail=f"Unknown section {unknown[0]!r}."
        )
    if document.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        raise InvalidInput.field("format_version", f"Only format_version {FORMAT_VERSION} is understood.")
    for section in TOP_LEVEL - {"format_version", "plugins"}:
        if not isinstance(document.get(section, []), list):
            raise InvalidInput.field(section, "Expected a list.")
    if not isinstance(document.get("plugins", {}), dict):
        raise InvalidInput.field("plugins", "Expected a mapping of plugin name to config.")
    return document


def _by_name(items: list[Any], key: str, section: str) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get(key), str):
            raise InvalidInput.field(f"{section}.{index}.{key}", f"Each entry needs a {key}.")
        if item[key] in result:
            raise InvalidInput.field(f"{section}.{index}.{key}", f"{item[key]!r} appears twice.")
        result[item[key]] = item
    return result


def _normalized(model: type[specs.Spec], data: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return model.model_validate(data).model_dump(mode="json")
    except Exception:
        return None  # invalid: the save will report it with its field


def _reindex(error: InvalidInput, section: str, name: str) -> InvalidInput:
    errors = {f"{section}.{name}.{field}": messages for field, messages in error.errors.items()}
    return InvalidInput(errors, detail=f"{section} {name!r}: {error.detail}")


def _sync_kind(
    plan: list[dict[str, Any]],
    author: Author,
    cluster: GatewayCluster,
    section: str,
    desired: dict[str, dict[str, Any]],
    current: dict[str, Any],
    spec_model: type[specs.Spec],
    to_spec: Any,
    save: Any,
) -> None:
    for name, wanted in desired.items():
        body = {k: v for k, v in wanted.items() if k != "credentials"}
        entity = current.get(name)
        try:
            if entity is None:
                save(author, cluster, body)
                plan.append({"action": "create", "kind": section, "name": name})
                continue
            before = _normalized(spec_model, to_spec(entity))
            after = _normalized(spec_model, body)
            if before != after:
                save(author, cluster, body, entity)
                changed = sorted(
                    k
                    for k in set(before or {}) | set(after or {})
                    if (before or {}).get(k) != (after or {}).get(k)
                )
                plan.append({"action": "update", "kind": section, "name": name, "fields": changed})
        except InvalidInput as exc:
            raise _reindex(exc, section, name) from exc


def _delete_missing(
    plan: list[dict[str, Any]],
    section: str,
    desired: dict[str, Any],
    current: dict[str, Any],
    remove: Any,
    author: Author,
) -> None:
    for name in sorted(set(current) - set(desired)):
        try:
            remove(author, current[name])
        except InvalidInput as exc:
            raise _reindex(exc, section, name) from exc
        plan.append({"action": "delete", "kind": section, "name": name})


def _sync_credentials(
    plan: list[dict[str, Any]], author: Author, consumer: Consumer, wanted: list[Any]
) -> None:
    existing = list(consumer.credentials.all())
    key_digests = {c.key_sha256 for c in existing if c.type == Credential.KEY_AUTH}

    def identity(item: dict[str, Any]) -> tuple[str, str]:
        kind = item.get("type")
        if kind == "key-auth":
            if "key" in item and isinstance(item["key"], str):
                return kind, _key_digest(consumer.cluster, item["key"], key_digests)
            return kind, str(item.get("key_sha256", item.get("key_hmac_sha256", "")))
        if kind == "jwt-auth":
            return kind, str(item.get("key", ""))
        if kind == "hmac-auth":
            return kind, str(item.get("key_id", ""))
        return str(kind), str(item.get("username", ""))

    def identity_of(credential: Credential) -> tuple[str, str]:
        return {
            Credential.KEY_AUTH: (credential.type, credential.key_sha256),
            Credential.JWT_AUTH: (credential.type, credential.jwt_key),
            Credential.HMAC_AUTH: (credential.type, credential.hmac_key_id),
        }.get(credential.type, (credential.type, credential.basic_username))

    present = {identity_of(c): c for c in existing}
    desired: dict[tuple[str, str], dict[str, Any]] = {}
    for index, item in enumerate(wanted):
        if not isinstance(item, dict):
            raise InvalidInput.field(
                f"consumers.{consumer.username}.credentials.{index}", "Expected a mapping."
            )
        desired[identity(item)] = item
    for key, credential in present.items():
        if key not in desired:
            services.delete_credential(author, credential, publish=False)
            plan.append(
                {
                    "action": "delete",
                    "kind": "credentials",
                    "name": f"{consumer.username}/{key[0]}/{key[1][:12]}",
                }
            )
    for key, item in desired.items():
        if key in present:
            continue  # same identity: the secret the cluster holds stays
        body = dict(item)
        if body.get("type") == "key-auth" and "key_hmac_sha256" in body and "key" not in body:
            raise InvalidInput.field(
                f"consumers.{consumer.username}.credentials.key_hmac_sha256",
                "This digest was made with another cluster's secret: bring the key itself (`key`).",
            )
        if body.get("type") == "key-auth" and "key_sha256" in body and "key" not in body:
            _add_key_hash(author, consumer, str(body["key_sha256"]))
        else:
            try:
                services.add_credential(author, consumer, body, publish=False)
            except InvalidInput as exc:
                raise _reindex(exc, "consumers", f"{consumer.username}.credentials") from exc
        plan.append(
            {"action": "create", "kind": "credentials", "name": f"{consumer.username}/{key[0]}/{key[1][:12]}"}
        )


def _key_digest(cluster: GatewayCluster, key: str, present: set[str]) -> str:
    """The digest a clear key is stored under in this consumer, by either scheme (the plain
    SHA-256 for a key not stored yet)."""
    legacy = sha256_hex(key)
    if legacy not in present and KeyAuthSecret.objects.filter(cluster=cluster).exists():
        hashed = key_hmac_hex(services.key_auth_secret(cluster), key)
        if hashed in present:
            return hashed
    return legacy


def _add_key_hash(author: Author, consumer: Consumer, key_sha256: str) -> None:
    """A key known only by its plain SHA-256 (a file exported from a cluster that hashed that
    way): stored as such, and looked up in the gateway's SHA-256 map."""
    if len(key_sha256) != 64 or any(c not in "0123456789abcdef" for c in key_sha256):
        raise InvalidInput.field(
            f"consumers.{consumer.username}.credentials.key_sha256", "Expected a SHA-256 in hex."
        )
    credential = Credential.objects.create(
        cluster=consumer.cluster,
        consumer=consumer,
        type=Credential.KEY_AUTH,
        key_sha256=key_sha256,
        key_scheme=Credential.KEY_SHA256,
        key_prefix="",
    )
    record_audit(
        author.actor,
        author.organization,
        "credential.create",
        consumer,
        after={"credential": services.credential_view(credential)},
    )


def _apply(author: Author, cluster: GatewayCluster, document: dict[str, Any]) -> list[dict[str, Any]]:
    plan: list[dict[str, Any]] = []
    upstreams = _by_name(document.get("upstreams", []), "name", "upstreams")
    services_ = _by_name(document.get("services", []), "name", "services")
    routes = _by_name(document.get("routes", []), "name", "routes")
    consumers = _by_name(document.get("consumers", []), "username", "consumers")
    certificates = _by_name(document.get("certificates", []), "name", "certificates")
    current_routes = {r.name: r for r in Route.objects.filter(cluster=cluster).select_related("service")}
    current_services = {s.name: s for s in Service.objects.filter(cluster=cluster).select_related("upstream")}
    current_upstreams = {u.name: u for u in Upstream.objects.filter(cluster=cluster)}

    # Routes and services that go away first, so upstreams they used can change or go.
    _delete_missing(
        plan, "routes", routes, current_routes, partial(services.delete_route, publish=False), author
    )
    _delete_missing(
        plan, "services", services_, current_services, partial(services.delete_service, publish=False), author
    )
    _sync_kind(
        plan,
        author,
        cluster,
        "upstreams",
        upstreams,
        current_upstreams,
        specs.UpstreamSpec,
        services.upstream_spec,
        partial(services.save_upstream, publish=False),
    )
    current_services = {s.name: s for s in Service.objects.filter(cluster=cluster).select_related("upstream")}
    _sync_kind(
        plan,
        author,
        cluster,
        "services",
        services_,
        current_services,
        specs.ServiceSpec,
        services.service_spec,
        partial(services.save_service, publish=False),
    )
    current_routes = {r.name: r for r in Route.objects.filter(cluster=cluster).select_related("service")}
    _sync_kind(
        plan,
        author,
        cluster,
        "routes",
        routes,
        current_routes,
        specs.RouteSpec,
        services.route_spec,
        partial(services.save_route, publish=False),
    )
    current_upstreams = {u.name: u for u in Upstream.objects.filter(cluster=cluster)}
    _delete_missing(
        plan,
        "upstreams",
        upstreams,
        current_upstreams,
        partial(services.delete_upstream, publish=False),
        author,
    )

    current_consumers = {c.username: c for c in Consumer.objects.filter(cluster=cluster)}
    _delete_missing(
        plan,
        "consumers",
        consumers,
        current_consumers,
        partial(services.delete_consumer, publish=False),
        author,
    )
    _sync_kind(
        plan,
        author,
        cluster,
        "consumers",
        consumers,
        current_consumers,
        specs.ConsumerSpec,
        services.consumer_spec,
        partial(services.save_consumer, publish=False),
    )
    for username, wanted in consumers.items():
        consumer = Consumer.objects.get(cluster=cluster, username=username)
        credentials = wanted.get("credentials", [])
        if not isinstance(credentials, list):
            raise InvalidInput.field(f"consumers.{username}.credentials", "Expected a list.")
        _sync_credentials(plan, author, consumer, credentials)

    current_certificates = {c.name: c for c in Certificate.objects.filter(cluster=cluster)}
    _delete_missing(
        plan,
        "certificates",
        certificates,
        current_certificates,
        partial(services.delete_certificate, publish=False),
        author,
    )
    for name, wanted in certificates.items():
        existing = current_certificates.get(name)
        if existing is not None and "private_key" not in wanted:
            if wanted.get("certificate", "").strip() != existing.certificate_pem.strip():
                raise InvalidInput.field(
                    f"certificates.{name}.private_key", "A new certificate needs its private key."
                )
            continue
        try:
            services.save_certificate(author, cluster, wanted, existing, publish=False)
        except InvalidInput as exc:
            raise _reindex(exc, "certificates", name) from exc
        plan.append({"action": "update" if existing else "create", "kind": "certificates", "name": name})

    plugins = document.get("plugins", {})
    current_plugins = {p.name: p for p in GlobalPlugin.objects.filter(cluster=cluster)}
    for name in sorted(set(current_plugins) - set(plugins)):
        services.delete_global_plugin(author, current_plugins[name], publish=False)
        plan.append({"action": "delete", "kind": "plugins", "name": name})
    for name, config in plugins.items():
        existing_plugin = current_plugins.get(name)
        if existing_plugin is not None and existing_plugin.config == config:
            continue
        try:
            services.set_global_plugin(author, cluster, name, config, publish=False)
        except InvalidInput as exc:
            raise _reindex(exc, "plugins", name) from exc
        plan.append({"action": "update" if existing_plugin else "create", "kind": "plugins", "name": name})
    return plan


def apply_config(
    author: Author, cluster: GatewayCluster, text: Any, *, dry_run: bool, based_on: int | None = None
) -> dict[str, Any]:
    """Make the cluster match the document. With `dry_run`, the same work runs and is rolled
    back, so the plan shows exactly what would change and nothing does; the plan names the
    version it was made against (`based_on_version`). An apply `based_on` a version that is no
    longer the latest is refused: the plan went stale, and applying it would undo what changed
    since without anyone having seen it."""
    document = parse_document(text)
    result: dict[str, Any] = {}
    try:
        with transaction.atomic():
            latest = _check_plan_current(cluster, based_on)
            # Every write without its own publish; the whole document is published once.
            plan = _apply(author, cluster, document)
            if plan:
                record_audit(
                    author.actor,
                    author.organization,
                    "config.apply",
                    cluster,
                    after={"changes": len(plan), "dry_run": dry_run},
                )
            published = publish(cluster, author=author.label, reason="declarative apply")
            result = {
                "dry_run": dry_run,
                "plan": plan,
                "based_on_version": latest.version if latest else None,
                "version": published.version,
            }
            if dry_run:
                raise _Rollback
    except _Rollback:
        result["version"] = None
    return result


def _check_plan_current(cluster: GatewayCluster, based_on: int | None) -> ConfigSnapshot | None:
    """The cluster's latest snapshot, with the cluster locked for the apply; StaleRevision when
    the plan was made against another version."""
    GatewayCluster.objects.select_for_update().filter(id=cluster.id).first()
    latest = ConfigSnapshot.objects.filter(cluster=cluster).order_by("-version").first()
    current = latest.version if latest else 0
    if based_on is not None and based_on != current:
        who = f" by {latest.author}" if latest and latest.author else ""
        raise StaleRevision(
            f"The plan was made against version {based_on}; the cluster is at version {current}, "
            f"published{who}. Plan again.",
            {
                "current_revision": current,
                "updated_by": (latest.author or None) if latest else None,
                "updated_at": latest.created_at.isoformat() if latest else None,
            },
        )
    return latest
