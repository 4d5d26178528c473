"""Business rules of the catalog. Every write validates (saas.catalog.specs plus the rules that
span entities), records an audit entry and publishes the cluster's next snapshot, all in one
transaction: no snapshot for a rolled-back write, no write without its snapshot."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Model, Q

from core.encryption import decrypt_secret, encrypt_secret
from core.errors import InvalidInput, NotFound, StaleRevision
from saas.gateways.publishing import publish as publish_snapshot
from saas.gateways.services import Author, ConfigSnapshot, GatewayCluster
from tenants.audit import record_audit

from . import specs
from .key_material import (
    check_jwt_public_key,
    crypt_password,
    key_hmac_hex,
    new_api_key,
    new_key_auth_secret,
    parse_certificate,
    sha256_hex,
)
from .models import (
    CatalogEntity,
    Certificate,
    Consumer,
    Credential,
    GlobalPlugin,
    KeyAuthSecret,
    Route,
    Service,
    Upstream,
)
from .plugins import plugin_config_errors, with_new_config_defaults
from .sections import with_dependent_sections

# --- entities as specs (the API's output and the declarative export) -------------------------


def upstream_spec(upstream: Upstream) -> dict[str, Any]:
    return {
        "name": upstream.name,
        "targets": upstream.targets,
        "load_balancing": upstream.load_balancing,
        "hash_header": upstream.hash_header or None,
        "scheme": upstream.scheme,
        "tls_sni": upstream.tls_sni or None,
        "tls_verify": upstream.tls_verify,
        "tls_ca_pem": upstream.tls_ca_pem or None,
        "timeouts": upstream.timeouts,
        "retries": upstream.retries,
        "active_health_check": upstream.active_health_check,
        "passive_health_check": upstream.passive_health_check,
    }


def service_spec(service: Service) -> dict[str, Any]:
    return {
        "name": service.name,
        "description": service.description,
        "upstream": service.upstream.name,
        "plugins": service.plugins,
    }


def route_spec(route: Route) -> dict[str, Any]:
    return {
        "name": route.name,
        "service": route.service.name,
        "hosts": route.hosts,
        "paths": route.paths,
        "methods": route.methods,
        "headers": route.headers,
        "priority": route.priority,
        "strip_path_prefix": route.strip_path_prefix or None,
        "plugins": route.plugins,
    }


def consumer_spec(consumer: Consumer) -> dict[str, Any]:
    return {"username": consumer.username, "labels": consumer.labels, "plugins": consumer.plugins}


def credential_view(credential: Credential) -> dict[str, Any]:
    """A credential as people may see it again: never a key, secret or password."""
    if credential.type == Credential.KEY_AUTH:
        return {"type": credential.type, "key_prefix": credential.key_prefix}
    if credential.type == Credential.JWT_AUTH:
        return {
            "type": credential.type,
            "key": credential.jwt_key,
            "algorithm": credential.jwt_algorithm,
            "public_key": credential.jwt_public_key_pem or None,
        }
    if credential.type == Credential.HMAC_AUTH:
        return {"type": credential.type, "key_id": credential.hmac_key_id}
    return {"type": credential.type, "username": credential.basic_username}


def certificate_view(certificate: Certificate) -> dict[str, Any]:
    return {
        "name": certificate.name,
        "certificate": certificate.certificate_pem,
        "snis": certificate.snis,
        "not_after": certificate.not_after.isoformat(),
        "fingerprint_sha256": certificate.fingerprint_sha256,
    }


def route_names(ids: list[int]) -> dict[int, str]:
    """The names of the routes with these ids (of the current organization) that still exist."""
    return dict(Route.objects.filter(id__in=ids).values_list("id", "name")) if ids else {}


# --- shared rules ----------------------------------------------------------------------------


def revision_view(entity: CatalogEntity) -> dict[str, Any]:
    """Who changed an entity last and when: what a refused stale write is told."""
    return {
        "current_revision": entity.revision,
        "updated_by": entity.updated_by or None,
        "updated_at": entity.updated_at.isoformat() if entity.updated_at else None,
    }


def claim_revision(entity: CatalogEntity, expected: int | None) -> None:
    """Lock the entity's row for the rest of the transaction and refuse the write when the caller
    edited an older revision than the current one (`expected` None: the caller does not say, as
    API clients that never read may). Two editors cannot then overwrite each other unknowingly."""
    current = type(entity)._default_manager.select_for_update().filter(pk=entity.pk).first()
    if current is None:
        raise NotFound(f"{type(entity).__name__} not found.")
    entity.revision = current.revision
    if expected is not None and expected != current.revision:
        who = f" by {current.updated_by}" if current.updated_by else ""
        raise StaleRevision(
            f"{type(entity).__name__} {current} was changed{who} at "
            f"{current.updated_at:%Y-%m-%d %H:%M:%S} UTC (revision {current.revision}; you edited "
            f"revision {expected}). Reload it and make your change again.",
            revision_view(current),
        )


def _commit(
    author: Author,
    cluster: GatewayCluster,
    action: str,
    target: Model,
    section: str,
    *,
    publish: bool,
    **changes: Any,
) -> ConfigSnapshot | None:
    """Audit the write and, unless the caller publishes many writes at once itself (`publish`
    false: a declarative apply, an OpenAPI import), publish the snapshot with the one section it
    changed recompiled."""
    record_audit(author.actor, author.organization, action, target, **changes)
    if not publish:
        return None
    return publish_snapshot(
        cluster,
        author=author.label,
        reason=f"{action} {target}",
        sections=with_dependent_sections([section]),
        changed_ids=_changed_consumer(target),
    )


def _changed_consumer(target: Model) -> dict[str, list[int]] | None:
    """A write to one consumer (its row or a credential, audited on the consumer) changes only
    its own entry in the consumers section: only its shard is recompiled."""
    return {"consumers": [target.pk]} if isinstance(target, Consumer) and target.pk is not None else None


def _delete(
    author: Author,
    entity: Any,
    action: str,
    sections: list[str],
    *,
    before: dict[str, Any],
    publish: bool,
    audit_target: Model | None = None,
) -> None:
    """Audit, delete, and publish the sections the deletion changed (see _commit)."""
    cluster = entity.cluster
    target = audit_target or entity
    reason = f"{action} {target}"
    changed_ids = _changed_consumer(target)  # before the delete takes a consumer's id away
    record_audit(author.actor, author.organization, action, target, before=before)
    entity.delete()
    if publish:
        publish_snapshot(
            cluster,
            author=author.label,
            reason=reason,
            sections=with_dependent_sections(sections),
            changed_ids=changed_ids,
        )


def _split_upstreams(config: dict[str, Any]) -> set[str]:
    """The upstreams a traffic-split config sends requests to."""
    names = {item["upstream"] for item in config.get("weighted_upstreams", [])}
    return names | {rule["upstream"] for rule in config.get("rules", [])}


def _check_name(
    model: type[Model], cluster: GatewayCluster, field: str, value: str, exclude: Model | None
) -> None:
    clash = model._default_manager.filter(cluster=cluster, **{field: value})
    if exclude is not None:
        clash = clash.exclude(pk=exclude.pk)
    if clash.exists():
        raise InvalidInput.field(
            field, f"{str(model._meta.verbose_name).capitalize()} {value!r} already exists in this cluster."
        )


def _check_plugins(
    cluster: GatewayCluster, plugins: dict[str, Any], scope: str, field: str = "plugins"
) -> None:
    errors: dict[str, list[str]] = {}
    for name, config in plugins.items():
        messages = plugin_config_errors(name, config, scope)
        if not messages and name == "traffic-split":
            wanted = _split_upstreams(config)
            known = set(
                Upstream.objects.filter(cluster=cluster, name__in=wanted).values_list("name", flat=True)
            )
            messages = [
                f"traffic-split: no upstream named {name!r} in this cluster."
                for name in sorted(wanted - known)
            ]
        if messages:
            errors[f"{field}.{name}"] = messages
    if errors:
        first = next(iter(errors.values()))[0]
        raise InvalidInput(errors, detail=first)


def _find(model: type[Model], cluster: GatewayCluster, field: str, name: str, what: str) -> Any:
    found = model._default_manager.filter(cluster=cluster, name=name).first()
    if found is None:
        raise InvalidInput.field(field, f"No {what} named {name!r} in this cluster.")
    return found


def _hosts_overlap(a: list[str], b: list[str]) -> bool:
    if not a or not b:
        return True  # a route without hosts matches every host

    def covers(pattern: str, host: str) -> bool:
        if pattern == host:
            return True
        if pattern.startswith("*."):
            suffix = pattern[1:]
            return host.endswith(suffix) or (host.startswith("*.") and host[1:].endswith(suffix))
        return False

    return any(covers(x, y) or covers(y, x) for x in a for y in b)


def _conflicting_route(cluster: GatewayCluster, spec: specs.RouteSpec, exclude: Route | None) -> Route | None:
    """Another route of the same priority that would match the same requests: overlapping
    hosts and methods, the same header conditions, and one identical path."""
    paths = {(p.type, p.value) for p in spec.paths}
    headers = sorted((h.name.lower(), h.type, h.value) for h in spec.headers)
    candidates = Route.objects.filter(cluster=cluster, priority=spec.priority)
    if exclude is not None:
        candidates = candidates.exclude(pk=exclude.pk)
    for other in candidates.only("id", "name", "hosts", "paths", "methods", "headers"):
        if not paths & {(p["type"], p["value"]) for p in other.paths}:
            continue
        if spec.methods and other.methods and not set(spec.methods) & set(other.methods):
            continue
        if headers != sorted((h["name"].lower(), h["type"], h["value"]) for h in other.headers):
            continue
        if _hosts_overlap(spec.hosts, other.hosts):
            return other
    return None


def _routing_order(route: Route) -> tuple[int, bool]:
    """How the gateways order a route (gateway_agent/renderer.py): by priority, highest first;
    in a priority, routes with hosts, headers or a regex path as rules by id, ahead of the
    others, which maps find by the longest prefix and so never hide one another."""
    as_rule = bool(route.hosts or route.headers or any(p["type"] == "regex" for p in route.paths))
    return route.priority, as_rule


def _covers_request(earlier: Route, later: Route) -> bool:
    """Whether every request `later` matches by host, method and header, `earlier` matches too."""

    def host_covered(host: str) -> bool:
        for pattern in earlier.hosts:
            if pattern == host:
                return True
            if pattern.startswith("*.") and host.endswith(pattern[1:]):
                return True
        return False

    if earlier.hosts and not (later.hosts and all(host_covered(h) for h in later.hosts)):
        return False
    if earlier.methods and not (later.methods and set(later.methods) <= set(earlier.methods)):
        return False
    conditions = {(h["name"].lower(), h["type"], h["value"]) for h in later.headers}
    return all((h["name"].lower(), h["type"], h["value"]) in conditions for h in earlier.headers)


def shadowed_paths(cluster: GatewayCluster, routes: list[Route]) -> dict[int, list[dict[str, Any]]]:
    """For each of `routes`, its paths no request can reach: a route the gateways try first
    (a higher priority, or the same one where both are matched as rules and it has the lower id)
    matches every request of the path, by the same or wider hosts, methods and headers, and a
    prefix the path starts with (or the same exact path). Regex paths are not analysed. One
    query and a lookup per character of each path, however many routes the cluster has."""
    if not routes:
        return {}
    lowest = min(route.priority for route in routes)
    others = list(
        Route.objects.filter(cluster=cluster, priority__gte=lowest).only(
            "id", "name", "priority", "hosts", "paths", "methods", "headers"
        )
    )
    by_prefix: dict[str, list[tuple[Route, str]]] = {}
    for other in others:
        for path in other.paths:
            if path["type"] in ("prefix", "exact"):
                by_prefix.setdefault(path["value"], []).append((other, path["type"]))
    result: dict[int, list[dict[str, Any]]] = {}
    for route in routes:
        priority, as_rule = _routing_order(route)
        found: list[dict[str, Any]] = []
        for path in route.paths:
            if path["type"] == "regex":
                continue
            value = path["value"]
            candidates = [
                (other, kind, value[:end])
                for end in range(len(value), 0, -1)
                for other, kind in by_prefix.get(value[:end], [])
                if kind == "prefix" or (path["type"] == "exact" and end == len(value))
            ]
            for other, kind, prefix in candidates:
                if other.pk == route.pk:
                    continue
                other_priority, other_as_rule = _routing_order(other)
                earlier = other_priority > priority or (
                    other_priority == priority and other_as_rule and (not as_rule or other.pk < route.pk)
                )
                if earlier and _covers_request(other, route):
                    found.append(
                        {
                            "path": value,
                            "path_type": path["type"],
                            "route_id": other.pk,
                            "route": other.name,
                            "priority": other.priority,
                            "by_path": prefix,
                            "by_path_type": kind,
                        }
                    )
                    break
        result[route.pk] = found
    return result


# --- upstreams -------------------------------------------------------------------------------


@transaction.atomic
def save_upstream(
    author: Author,
    cluster: GatewayCluster,
    data: Any,
    instance: Upstream | None = None,
    *,
    publish: bool = True,
) -> Upstream:
    spec = specs.parse_spec(specs.UpstreamSpec, data)
    _check_name(Upstream, cluster, "name", spec.name, instance)
    before = upstream_spec(instance) if instance else None
    upstream = instance or Upstream(cluster=cluster)
    upstream.name = spec.name
    upstream.targets = [t.model_dump() for t in spec.targets]
    upstream.load_balancing = spec.load_balancing
    upstream.hash_header = spec.hash_header or ""
    upstream.scheme = spec.scheme
    upstream.tls_sni = spec.tls_sni or ""
    upstream.tls_verify = spec.tls_verify
    upstream.tls_ca_pem = spec.tls_ca_pem or ""
    upstream.timeouts = spec.timeouts.model_dump()
    upstream.retries = spec.retries
    upstream.active_health_check = spec.active_health_check.model_dump() if spec.active_health_check else None
    upstream.passive_health_check = (
        spec.passive_health_check.model_dump() if spec.passive_health_check else None
    )
    upstream.updated_by = author.label
    upstream.save()
    _commit(
        author,
        cluster,
        "upstream.update" if instance else "upstream.create",
        upstream,
        "upstreams",
        before=before,
        after=upstream_spec(upstream),
        publish=publish,
    )
    return upstream


@transaction.atomic
def delete_upstream(author: Author, upstream: Upstream, *, publish: bool = True) -> None:
    users = sorted(upstream.services.values_list("name", flat=True))
    if users:
        raise InvalidInput.field(
            "upstream", f"Upstream {upstream.name!r} is used by services: {', '.join(users)}."
        )
    splitting = [
        owner.name
        for model in (Service, Route)
        for owner in model.objects.filter(cluster=upstream.cluster, plugins__has_key="traffic-split")
        if upstream.name in _split_upstreams(owner.plugins["traffic-split"])
    ]
    if splitting:
        raise InvalidInput.field(
            "upstream", f"Upstream {upstream.name!r} is used by traffic-split in: {', '.join(splitting)}."
        )
    _delete(
        author, upstream, "upstream.delete", ["upstreams"], before=upstream_spec(upstream), publish=publish
    )


# --- services --------------------------------------------------------------------------------


@transaction.atomic
def save_service(
    author: Author,
    cluster: GatewayCluster,
    data: Any,
    instance: Service | None = None,
    *,
    publish: bool = True,
) -> Service:
    spec = specs.parse_spec(specs.ServiceSpec, data)
    _check_name(Service, cluster, "name", spec.name, instance)
    upstream = _find(Upstream, cluster, "upstream", spec.upstream, "upstream")
    _check_plugins(cluster, spec.plugins, "service")
    before = service_spec(instance) if instance else None
    service = instance or Service(cluster=cluster)
    service.name, service.description, service.upstream, service.plugins = (
        spec.name,
        spec.description,
        upstream,
        with_new_config_defaults(spec.plugins, instance.plugins if instance else None),
    )
    service.updated_by = author.label
    service.save()
    _commit(
        author,
        cluster,
        "service.update" if instance else "service.create",
        service,
        "services",
        before=before,
        after=service_spec(service),
        publish=publish,
    )
    return service


@transaction.atomic
def delete_service(author: Author, service: Service, *, publish: bool = True) -> None:
    """Deletes the service and its routes."""
    before = service_spec(service) | {"routes": sorted(service.routes.values_list("name", flat=True))}
    _delete(author, service, "service.delete", ["services", "routes"], before=before, publish=publish)


# --- routes ----------------------------------------------------------------------------------


@transaction.atomic
def save_route(
    author: Author,
    cluster: GatewayCluster,
    data: Any,
    instance: Route | None = None,
    *,
    publish: bool = True,
) -> Route:
    spec = specs.parse_spec(specs.RouteSpec, data)
    _check_name(Route, cluster, "name", spec.name, instance)
    service = _find(Service, cluster, "service", spec.service, "service")
    _check_plugins(cluster, spec.plugins, "route")
    other = _conflicting_route(cluster, spec, instance)
    if other is not None:
        raise InvalidInput.field(
            "paths",
            f"Route {other.name!r} (id {other.id}) already matches the same requests "
            f"at priority {spec.priority}; "
            "change the hosts, methods, headers or paths, or give one a different priority.",
        )
    before = route_spec(instance) if instance else None
    route = instance or Route(cluster=cluster)
    route.name = spec.name
    route.service = service
    route.hosts = spec.hosts
    route.paths = [p.model_dump() for p in spec.paths]
    route.methods = list(spec.methods)
    route.headers = [h.model_dump() for h in spec.headers]
    route.priority = spec.priority
    route.strip_path_prefix = spec.strip_path_prefix or ""
    route.plugins = with_new_config_defaults(spec.plugins, instance.plugins if instance else None)
    route.updated_by = author.label
    route.save()
    _commit(
        author,
        cluster,
        "route.update" if instance else "route.create",
        route,
        "routes",
        before=before,
        after=route_spec(route),
        publish=publish,
    )
    return route


@transaction.atomic
def delete_route(author: Author, route: Route, *, publish: bool = True) -> None:
    _delete(author, route, "route.delete", ["routes"], before=route_spec(route), publish=publish)


# --- consumers and credentials ---------------------------------------------------------------


@transaction.atomic
def save_consumer(
    author: Author,
    cluster: GatewayCluster,
    data: Any,
    instance: Consumer | None = None,
    *,
    publish: bool = True,
) -> Consumer:
    spec = specs.parse_spec(specs.ConsumerSpec, data)
    _check_name(Consumer, cluster, "username", spec.username, instance)
    _check_plugins(cluster, spec.plugins, "consumer")
    before = consumer_spec(instance) if instance else None
    consumer = instance or Consumer(cluster=cluster)
    consumer.username, consumer.labels = spec.username, spec.labels
    consumer.plugins = with_new_config_defaults(spec.plugins, instance.plugins if instance else None)
    consumer.updated_by = author.label
    consumer.save()
    _commit(
        author,
        cluster,
        "consumer.update" if instance else "consumer.create",
        consumer,
        "consumers",
        before=before,
        after=consumer_spec(consumer),
        publish=publish,
    )
    return consumer


@transaction.atomic
def delete_consumer(author: Author, consumer: Consumer, *, publish: bool = True) -> None:
    _delete(
        author, consumer, "consumer.delete", ["consumers"], before=consumer_spec(consumer), publish=publish
    )


@transaction.atomic
def add_credential(
    author: Author, consumer: Consumer, data: Any, *, publish: bool = True
) -> tuple[Credential, dict[str, str]]:
    """Returns the credential and the secrets to show once (a generated key-auth key or JWT
    HMAC secret); supplied secrets are not echoed back."""
    spec = specs.parse_credential(data)
    cluster = consumer.cluster
    credential = Credential(cluster=cluster, consumer=consumer, type=spec.type)
    shown: dict[str, str] = {}
    same_cluster = Credential.objects.filter(cluster=cluster, type=spec.type)
    if isinstance(spec, specs.KeyAuthSpec):
        key = spec.key or new_api_key()
        if spec.key is None:
            shown["key"] = key
        # A prefix people may see again only of a key we generated (192 random bits, 36 shown):
        # of a key someone chose, even a few characters may give away the rest.
        credential.key_prefix = key[:6] if spec.key is None else ""
        credential.key_sha256 = key_hmac_hex(key_auth_secret(cluster), key)
        credential.key_scheme = Credential.KEY_HMAC_SHA256
        if key_in_use(cluster, key):
            raise InvalidInput.field("key", "This key is already in use in this cluster.")
    elif isinstance(spec, specs.JwtAuthSpec):
        if same_cluster.filter(jwt_key=spec.key).exists():
            raise InvalidInput.field(
                "key", f"A consumer with JWT key {spec.key!r} already exists in this cluster."
            )
        credential.jwt_key, credential.jwt_algorithm = spec.key, spec.algorithm
        if spec.algorithm.startswith("HS"):
            secret = spec.secret or new_api_key() + new_api_key()
            if spec.secret is None:
                shown["secret"] = secret
            credential.jwt_secret_ciphertext = encrypt_secret(secret)
        else:
            assert spec.public_key is not None
            check_jwt_public_key(spec.public_key, spec.algorithm)
            credential.jwt_public_key_pem = spec.public_key
    elif isinstance(spec, specs.HmacAuthSpec):
        if same_cluster.filter(hmac_key_id=spec.key_id).exists():
            raise InvalidInput.field(
                "key_id", f"A consumer with HMAC key id {spec.key_id!r} already exists in this cluster."
            )
        secret = spec.secret or new_api_key() + new_api_key()
        if spec.secret is None:
            shown["secret"] = secret
        credential.hmac_key_id, credential.hmac_secret_ciphertext = spec.key_id, encrypt_secret(secret)
    else:
        if same_cluster.filter(basic_username=spec.username).exists():
            raise InvalidInput.field(
                "username", f"Basic-auth user {spec.username!r} already exists in this cluster."
            )
        credential.basic_username, credential.basic_password_crypt = (
            spec.username,
            crypt_password(spec.password),
        )
    credential.save()
    _commit(
        author,
        cluster,
        "credential.create",
        consumer,
        "consumers",
        after={"credential": credential_view(credential)},
        publish=publish,
    )
    return credential, shown


def key_auth_secret(cluster: GatewayCluster) -> str:
    """The cluster's key-auth hashing secret, made with its first key."""
    ciphertext = (
        KeyAuthSecret.objects.filter(cluster=cluster).values_list("secret_ciphertext", flat=True).first()
    )
    if ciphertext is None:
        with transaction.atomic():  # a savepoint: two first keys at once make one secret
            row, _ = KeyAuthSecret.objects.get_or_create(
                cluster=cluster, defaults={"secret_ciphertext": encrypt_secret(new_key_auth_secret())}
            )
        ciphertext = row.secret_ciphertext
    return decrypt_secret(ciphertext)


def key_in_use(cluster: GatewayCluster, key: str) -> bool:
    """Whether a key-auth credential of the cluster already has this key, by either scheme."""
    digests = Q(key_scheme=Credential.KEY_SHA256, key_sha256=sha256_hex(key))
    if KeyAuthSecret.objects.filter(cluster=cluster).exists():
        digests |= Q(
            key_scheme=Credential.KEY_HMAC_SHA256, key_sha256=key_hmac_hex(key_auth_secret(cluster), key)
        )
    return Credential.objects.filter(digests, cluster=cluster, type=Credential.KEY_AUTH).exists()


@transaction.atomic
def delete_credential(author: Author, credential: Credential, *, publish: bool = True) -> None:
    before = {"credential": credential_view(credential)}
    _delete(
        author,
        credential,
        "credential.delete",
        ["consumers"],
        before=before,
        audit_target=credential.consumer,
        publish=publish,
    )


# --- what other apps drive (the developer portal manages consumers and guards routes) ---------


def consumer_by_id(cluster: GatewayCluster, consumer_id: int) -> Consumer | None:
    return Consumer.objects.filter(cluster=cluster, pk=consumer_id).first()


def consumer_by_username(cluster: GatewayCluster, username: str) -> Consumer | None:
    return Consumer.objects.filter(cluster=cluster, username=username).first()


def routes_by_ids(cluster: GatewayCluster, route_ids: list[int]) -> list[Route]:
    """The cluster's routes among `route_ids`, in id order (ids of other clusters are left out)."""
    return list(
        Route.objects.filter(cluster=cluster, pk__in=route_ids).select_related("service").order_by("id")
    )


def imported_service(cluster: GatewayCluster, name: str) -> tuple[list[int], dict[str, Any] | None]:
    """A service's route ids and the OpenAPI document it was imported from (None: not imported);
    NotFound without such a service."""
    service = Service.objects.filter(cluster=cluster, name=name).first()
    if service is None:
        raise InvalidInput.field("service", f"No service named {name!r} in this cluster.")
    route_ids = list(Route.objects.filter(service=service).order_by("id").values_list("id", flat=True))
    return route_ids, service.openapi_document


def consumer_credentials(consumer: Consumer) -> list[Credential]:
    return list(Credential.objects.filter(consumer=consumer).order_by("id"))


def key_matches(credential: Credential, key: str) -> bool:
    """Whether a key-auth credential holds this key (it stores only the key's digest)."""
    if credential.type != Credential.KEY_AUTH:
        return False
    if credential.key_scheme == Credential.KEY_SHA256:
        return credential.key_sha256 == sha256_hex(key)
    return credential.key_sha256 == key_hmac_hex(key_auth_secret(credential.cluster), key)


@transaction.atomic
def set_consumer_enabled(author: Author, consumer: Consumer, enabled: bool, *, publish: bool = True) -> None:
    """Suspend (False) or reinstate a consumer: a disabled one keeps its credentials, which the
    gateway no longer accepts (401), until it is enabled again."""
    claim_revision(consumer, None)
    if consumer.enabled == enabled:
        return
    consumer.enabled = enabled
    consumer.updated_by = author.label
    consumer.save(update_fields=["enabled", "revision", "updated_by", "updated_at"])
    _commit(
        author,
        consumer.cluster,
        "consumer.enable" if enabled else "consumer.disable",
        consumer,
        "consumers",
        before={"enabled": not enabled},
        after={"enabled": enabled},
        publish=publish,
    )


def publish_changes(
    author: Author, cluster: GatewayCluster, reason: str, sections: list[str]
) -> ConfigSnapshot:
    """One snapshot for many writes made with `publish=False` (each already audited)."""
    return publish_snapshot(
        cluster, author=author.label, reason=reason, sections=with_dependent_sections(sections)
    )


# --- certificates ----------------------------------------------------------------------------


@transaction.atomic
def save_certificate(
    author: Author,
    cluster: GatewayCluster,
    data: Any,
    instance: Certificate | None = None,
    *,
    publish: bool = True,
) -> Certificate:
    spec = specs.parse_spec(specs.CertificateSpec, data)
    _check_name(Certificate, cluster, "name", spec.name, instance)
    parsed = parse_certificate(spec.certificate, spec.private_key)
    before = certificate_view(instance) if instance else None
    certificate = instance or Certificate(cluster=cluster)
    certificate.name = spec.name
    certificate.certificate_pem = parsed.certificate_pem
    certificate.private_key_ciphertext = encrypt_secret(parsed.private_key_pem)
    certificate.snis = parsed.snis
    certificate.not_after = parsed.not_after
    certificate.fingerprint_sha256 = parsed.fingerprint_sha256
    certificate.updated_by = author.label
    certificate.save()
    after = {k: v for k, v in certificate_view(certificate).items() if k != "certificate"}
    _commit(
        author,
        cluster,
        "certificate.update" if instance else "certificate.create",
        certificate,
        "certificates",
        before={k: v for k, v in before.items() if k != "certificate"} if before else None,
        after=after,
        publish=publish,
    )
    return certificate


@transaction.atomic
def delete_certificate(author: Author, certificate: Certificate, *, publish: bool = True) -> None:
    before = {"name": certificate.name, "snis": certificate.snis}
    _delete(author, certificate, "certificate.delete", ["certificates"], before=before, publish=publish)


# --- global plugins --------------------------------------------------------------------------


@transaction.atomic
def set_global_plugin(
    author: Author, cluster: GatewayCluster, name: str, config: Any, *, publish: bool = True
) -> GlobalPlugin:
    _check_plugins(cluster, {name: config}, "global", field="config")
    plugin, created = GlobalPlugin.objects.get_or_create(
        cluster=cluster, name=name, defaults={"config": config, "updated_by": author.label}
    )
    before = None if created else {"config": plugin.config}
    if not created:
        plugin.config = config
        plugin.updated_by = author.label
        plugin.save()
    _commit(
        author,
        cluster,
        "global_plugin.set",
        plugin,
        "global_plugins",
        before=before,
        after={"config": config},
        publish=publish,
    )
    return plugin


def global_plugin_config(cluster: GatewayCluster, name: str) -> dict[str, Any] | None:
    """The cluster-wide setting of a plugin, if one is set."""
    plugin = GlobalPlugin.objects.filter(cluster=cluster, name=name).first()
    return plugin.config if plugin is not None else None


@transaction.atomic
def delete_global_plugin(author: Author, plugin: GlobalPlugin, *, publish: bool = True) -> None:
    _delete(
        author,
        plugin,
        "global_plugin.delete",
        ["global_plugins"],
        before={"config": plugin.config},
        publish=publish,
    )
