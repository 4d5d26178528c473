"""What gateway agents do with the control plane: authenticate with a cluster token, register,
send heartbeats, and fetch config snapshots with the secrets they need.

Live status lives in Redis with a TTL: a heartbeat every 10 s; an instance is online while its
last heartbeat is at most 30 s old, lost up to 2 h, then offline (the key expires)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from django.db import connection, transaction
from django_redis import get_redis_connection
from django_tenants.utils import schema_context

from core import clock
from core.api.raw_asgi import in_pool
from core.api.validation import parse_id
from core.encryption import decrypt_secret
from gateway_agent.protocol import Heartbeat, RegisterRequest
from tenants.credentials import hash_secret
from tenants.models import Organization

from .models import CLUSTER_TOKEN_PREFIX, ClusterToken, ConfigSnapshot, GatewayInstance
from .snapshots import SHARDED_SECTIONS, SectionCache, section_shards, section_texts, snapshot_texts

HEARTBEAT_INTERVAL_S = 10
ONLINE_WITHIN_S = 30
OFFLINE_AFTER_S = 2 * 3600
TOKEN_LAST_USED_RESOLUTION_S = 60


@dataclass(frozen=True)
class AgentContext:
    """Who is calling the agent API: a cluster of an organization, through one token."""

    organization_id: int
    schema_name: str
    cluster_id: int
    token_id: int


def authenticate_agent(secret: str) -> AgentContext | None:
    """The cluster behind a token, or None when the token is unknown or revoked (a rotated
    token is accepted until its grace period ends). The token names its organization, so one
    indexed lookup in that organization's schema suffices. Records the token's last use, at
    most once a minute."""
    found = _authenticate(secret)
    return found[0] if found else None


def _authenticate(secret: str) -> tuple[AgentContext, datetime | None] | None:
    """The context and when the token stops working (None: until revoked)."""
    if not secret.startswith(CLUSTER_TOKEN_PREFIX):
        return None
    org_part, _, rest = secret[len(CLUSTER_TOKEN_PREFIX) :].partition("_")
    organization_id = parse_id(org_part)
    if organization_id is None or not rest:
        return None
    organization = (
        Organization.objects.filter(id=organization_id, is_template=False).only("schema_name").first()
    )
    if organization is None:
        return None
    now = clock.now()
    with schema_context(organization.schema_name):
        token = (
            ClusterToken.objects.accepted_at(now)
            .filter(token_hash=hash_secret(secret))
            .only("id", "cluster_id", "last_used_at", "revoked_at")
            .first()
        )
        if token is None:
            return None
        if (
            token.last_used_at is None
            or (now - token.last_used_at).total_seconds() >= TOKEN_LAST_USED_RESOLUTION_S
        ):
            ClusterToken.objects.filter(id=token.id).update(last_used_at=now)
        ctx = AgentContext(organization.id, organization.schema_name, token.cluster_id, token.id)
        return ctx, token.revoked_at


AUTHENTICATION_CACHE_S = 30.0
# While this process hears revocations announced (saas.gateways.notifier), an entry can live
# longer: what would end it is announced. Each web process re-checks each token this often.
ANNOUNCED_AUTHENTICATION_CACHE_S = 300.0
_announcements_heard = False
# hash of the secret -> (when accepted, context, when the token stops working)
_authenticated: dict[str, tuple[datetime, AgentContext, datetime | None]] = {}
_authenticated_lock = threading.Lock()


def recently_authenticated(secret: str) -> AgentContext | None:
    """The context of a token authenticate_agent_cached accepted less than 30 s ago (5 min while
    revocations are heard announced), without touching the database (so it may run on the event
    loop). The age is read from the product's clock, so a clock moved on (a test's, or a
    corrected one) ends the entry as time would."""
    with _authenticated_lock:
        hit = _authenticated.get(hash_secret(secret))
    if hit is None:
        return None
    now = clock.now()
    accepted_at, ctx, accepted_until = hit
    max_age_s = ANNOUNCED_AUTHENTICATION_CACHE_S if _announcements_heard else AUTHENTICATION_CACHE_S
    if not 0 <= (now - accepted_at).total_seconds() < max_age_s:
        return None
    # A rotated token's grace period ends on time, cache or not.
    return ctx if accepted_until is None or now < accepted_until else None


def hear_token_announcements(heard: bool) -> None:
    """Whether this process hears revocations announced now (from saas.gateways.notifier)."""
    global _announcements_heard
    _announcements_heard = heard


def forget_authenticated(token_hash: str | None) -> None:
    """Drop a token (by its hash) from this process's cache; None drops every one."""
    with _authenticated_lock:
        if token_hash is None:
            _authenticated.clear()
        else:
            _authenticated.pop(token_hash, None)


def authenticate_agent_cached(secret: str) -> AgentContext | None:
    """authenticate_agent, remembered per token in this process: for what every agent calls all
    the time. A revoked or rotated token, or one of a deleted cluster, is forgotten at once by
    every process that hears it announced (saas.gateways.notifier); a process that does not hear
    announcements remembers a token 30 s at most."""
    known = recently_authenticated(secret)
    if known is not None:
        return known
    now = clock.now()
    key = hash_secret(secret)
    found = _authenticate(secret)
    if found is None:
        return None
    ctx, accepted_until = found
    with _authenticated_lock:
        if len(_authenticated) > 10_000:
            _authenticated.clear()
        _authenticated[key] = (now, ctx, accepted_until)
    return ctx


async def authenticated_agent(secret: str) -> AgentContext | None:
    """For the endpoints served beside Django: the token's context from this process's cache,
    else looked up on the shared thread pool."""
    return recently_authenticated(secret) or await in_pool(authenticate_agent_cached)(secret)


def _status_key(ctx: AgentContext, instance_id: str) -> str:
    return f"gw:status:{ctx.schema_name}:{ctx.cluster_id}:{instance_id}"


def _members_key(ctx: AgentContext) -> str:
    return f"gw:instances:{ctx.schema_name}:{ctx.cluster_id}"


def register_instance(
    ctx: AgentContext, request: RegisterRequest, address: str | None = None
) -> GatewayInstance:
    """Record (or update) the instance; `address` is the one the control plane saw it call from."""
    with schema_context(ctx.schema_name), transaction.atomic():
        instance = None
        if request.instance_id:
            instance = GatewayInstance.objects.filter(
                cluster_id=ctx.cluster_id, instance_id=request.instance_id
            ).first()
        if instance is None:
            instance = GatewayInstance(cluster_id=ctx.cluster_id, instance_id=uuid.uuid4())
        instance.hostname = request.hostname
        instance.agent_version = request.agent_version
        instance.haproxy_version = request.haproxy_version
        instance.labels = request.labels
        instance.token_id = ctx.token_id
        instance.address = address
        instance.save()
    get_redis_connection("default").sadd(_members_key(ctx), str(instance.instance_id))
    return instance


# Heartbeats are stored only for instances registered with their cluster: one round trip for
# any number of them (a web process stores those that arrived together at once). KEYS: members
# and status key of each; ARGV: the TTL, then instance id and status of each. 1 stored, 0 not.
STORE_HEARTBEATS = """
local stored = {}
for i = 1, #KEYS / 2 do
  if redis.call('SISMEMBER', KEYS[2 * i - 1], ARGV[2 * i]) == 1 then
    redis.call('SET', KEYS[2 * i], ARGV[2 * i + 1], 'EX', ARGV[1])
    stored[i] = 1
  else
    stored[i] = 0
  end
end
return stored
"""
StoredHeartbeat = tuple[str, str, str, str]  # members key, status key, instance id, status


def stored_heartbeat(ctx: AgentContext, heartbeat: Heartbeat, address: str | None) -> StoredHeartbeat:
    """What STORE_HEARTBEATS takes of one heartbeat, for a client of either kind: the web
    process's asyncio one or a synchronous one."""
    status = {
        "at": time.time(),
        "applied_version": heartbeat.applied_version,
        "last_error": heartbeat.last_error,
        "address": address,
        # The token it calls with now: a gateway restarted with a rotated token's new secret
        # keeps its instance id, and does not register again.
        "token_id": ctx.token_id,
    }
    return (
        _members_key(ctx),
        _status_key(ctx, heartbeat.instance_id),
        heartbeat.instance_id,
        json.dumps(status),
    )


def store_heartbeats_arguments(heartbeats: list[StoredHeartbeat]) -> tuple[list[str], list[Any]]:
    """The KEYS and ARGV of STORE_HEARTBEATS."""
    keys = [key for members, status, _, _ in heartbeats for key in (members, status)]
    values: list[Any] = [OFFLINE_AFTER_S]
    for _, _, instance_id, status in heartbeats:
        values += (instance_id, status)
    return keys, values


def record_heartbeat(ctx: AgentContext, heartbeat: Heartbeat, address: str | None = None) -> bool:
    """False when the instance is not registered with this cluster. `address`: the one the
    control plane saw the heartbeat come from."""
    keys, values = store_heartbeats_arguments([stored_heartbeat(ctx, heartbeat, address)])
    stored = get_redis_connection("default").eval(STORE_HEARTBEATS, len(keys), *keys, *values)
    return bool(stored[0])


def instance_statuses(schema_name: str, cluster_id: int, organization_id: int) -> list[dict[str, Any]]:
    """Every registered instance with its live status: three queries and one Redis MGET, however
    many instances. Call inside the organization's schema."""
    ctx = AgentContext(organization_id, schema_name, cluster_id, 0)
    instances = list(GatewayInstance.objects.filter(cluster_id=cluster_id).order_by("id"))
    latest = (
        ConfigSnapshot.objects.filter(cluster_id=cluster_id)
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
    )
    raw = (
        get_redis_connection("default").mget([_status_key(ctx, str(i.instance_id)) for i in instances])
        if instances
        else []
    )
    statuses = [json.loads(value) if value else None for value in raw]
    # The token each last called with: its heartbeat's, else the one it registered with.
    token_ids = [
        (status or {}).get("token_id") or i.token_id for i, status in zip(instances, statuses, strict=True)
    ]
    tokens = ClusterToken.objects.only("prefix", "revoked_at").in_bulk({t for t in token_ids if t})
    now = time.time()
    result = []
    for instance, status, token_id in zip(instances, statuses, token_ids, strict=True):
        token = tokens.get(token_id) if token_id else None
        age = now - status["at"] if status else None
        state = (
            "offline"
            if age is None or age > OFFLINE_AFTER_S
            else ("online" if age <= ONLINE_WITHIN_S else "lost")
        )
        applied = status["applied_version"] if status else None
        result.append(
            {
                "id": instance.id,
                "instance_id": str(instance.instance_id),
                "hostname": instance.hostname,
                "address": (status or {}).get("address") or instance.address,
                "agent_version": instance.agent_version,
                "haproxy_version": instance.haproxy_version,
                "labels": instance.labels,
                "token": token.prefix if token else None,
                "registered_at": instance.registered_at,
                "status": state,
                "last_heartbeat_at": datetime.fromtimestamp(status["at"], tz=UTC) if status else None,
                "applied_version": applied,
                "latest_version": latest,
                "on_latest_version": latest is not None and applied == latest,
                "last_error": _last_error(token, status["last_error"] if status else None),
            }
        )
    return result


def _last_error(token: ClusterToken | None, reported: str | None) -> str | None:
    """What the agent last reported; first, when the control plane refuses its token (revoked,
    or a rotated one past its grace period), that: the agent cannot report it."""
    if token is None or token.accepted_at(clock.now()):
        return reported
    refused = (
        f"Its cluster token {token.prefix}… is refused since {token.revoked_at:%Y-%m-%d %H:%M} UTC: "
        "restart the gateway with a current token."
    )
    return f"{refused} Its last reported error: {reported}" if reported else refused


# Named with its schema: no `SET search_path` round trip for an organization the connection was
# not last used for (with a thousand organizations, nearly every poll's).
_LATEST = "SELECT version, sha256 FROM {table} WHERE cluster_id = %s ORDER BY version DESC LIMIT 1"


def latest_snapshot(ctx: AgentContext) -> tuple[int, str] | None:
    """The cluster's latest (version, sha256): what a long-poll asks whenever its process has not
    heard of the cluster lately, so one round trip, bound on the server, without the ORM."""
    connection.ensure_connection()
    table = f"{connection.ops.quote_name(ctx.schema_name)}.{connection.ops.quote_name(ConfigSnapshot._meta.db_table)}"
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_LATEST.format(table=table), [ctx.cluster_id], prepare=False)
        row = cursor.fetchone()
    return (int(row[0]), str(row[1])) if row else None


def _with_usable_secrets(key: str, value: Any) -> Any:
    """Decrypt what the agent must hold: JWT and HMAC secrets, the key-auth hashing secret, TLS
    private keys."""
    if key == "key_auth" and value and value.get("secret_ciphertext"):
        value["secret"] = decrypt_secret(value.pop("secret_ciphertext"))
    elif key == "consumers":
        for consumer in value:
            for credential in consumer["credentials"]:
                if credential.get("secret_ciphertext"):
                    credential["secret"] = decrypt_secret(credential.pop("secret_ciphertext"))
    elif key == "certificates":
        for certificate in value:
            if certificate.get("private_key_ciphertext"):
                certificate["private_key_pem"] = decrypt_secret(certificate.pop("private_key_ciphertext"))
    return value


def _served_section(key: str, text: str) -> str:
    """A section as agents receive it. Only sections holding ciphertext are parsed (to decrypt
    it); the others go out as stored, so ten thousand consumers cost a string copy."""
    if key not in ("consumers", "key_auth", "certificates") or "_ciphertext" not in text:
        return text
    return json.dumps(
        _with_usable_secrets(key, json.loads(text)), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


# The served form of recent snapshots, by (schema, cluster, version, the version the agent holds
# shards of, whether it takes shards): when a publish wakes a thousand waiting agents, the
# document is assembled and decrypted once. Keyed by version, not by content: a rollback
# publishes an earlier content under a new version, and an agent must be told that new version,
# or it polls again at once for ever.
_served: OrderedDict[tuple[str, int, int, int | None, bool], bytes] = OrderedDict()
_served_lock = threading.Lock()
SERVED_CACHE_ENTRIES = 32
# Shards as served (secrets decrypted), by the stored shard's hash: a new version reads and
# decrypts only the shards it changed.
_served_shards = SectionCache(64 * 1024 * 1024)


def served_etag(version: int, sha256: str) -> str:
    """The ETag of a served snapshot: its version (what agents report and compare) and content."""
    return f"{version}-{sha256}"


def served_snapshot_json(
    ctx: AgentContext, version: int, *, shards: bool = False, have: int | None = None
) -> tuple[int, bytes] | None:
    """The snapshot `version` as (version, JSON bytes), cached; None when it does not exist.

    The body is {"version", "sha256", "served_sha256", "sections": {name: section sha256},
    "document"}. `sha256` is the stored document's (the snapshot's identity); `served_sha256` and
    the sections' hashes are those of the canonical JSON the agent receives, secrets decrypted,
    so an agent can recompute and check every one. Agents revalidate only the sections whose
    sha256 they have not seen.

    With `shards` the sharded sections (the consumers) leave `document` for "shards" ({name:
    {index: served shard sha256}}, every shard) and "shard_texts" ({name: {index: the shard's
    canonical JSON as a string}}); `sections` and `served_sha256` are unchanged, so both forms of
    a version check to the same hashes. With `have` naming a version of the cluster, the texts
    of the shards stored alike in that version are left out and "base_version" is `have`, even
    when no shard was left out; a `have` the cluster has no version of is ignored."""
    key = (ctx.schema_name, ctx.cluster_id, version, have if shards else None, shards)
    with _served_lock:
        cached = _served.get(key)
    if cached is not None:
        return version, cached
    body = _served_in_shards(ctx, version, have) if shards else _served_whole(ctx, version)
    if body is None:
        return None
    with _served_lock:
        _served[key] = body
        while len(_served) > SERVED_CACHE_ENTRIES:
            _served.popitem(last=False)
    return version, body


def _stored_version(ctx: AgentContext, version: int) -> ConfigSnapshot | None:
    return ConfigSnapshot.objects.filter(cluster_id=ctx.cluster_id, version=version).first()


def _served_hash(stored_sha: str, stored: str, served: str) -> str:
    """A section's hash as agents check it: the stored one, unless secrets were decrypted."""
    return stored_sha if served == stored else hashlib.sha256(served.encode()).hexdigest()


def _served_whole(ctx: AgentContext, version: int) -> bytes | None:
    """The body with every section in `document`."""
    with schema_context(ctx.schema_name):
        snapshot = _stored_version(ctx, version)
        if snapshot is None:
            return None
        texts = snapshot_texts(snapshot)
    served = {key: _served_section(key, texts[key]) for key in sorted(snapshot.sections)}
    # The hashes agents check: of each section and of the document as they receive them. They
    # differ from the stored ones only where secrets were decrypted.
    sections = {
        key: _served_hash(sha, texts[key], served[key]) for key, sha in sorted(snapshot.sections.items())
    }
    document = ",".join(f"{json.dumps(key)}:{text}" for key, text in served.items())
    served_sha256 = hashlib.sha256(f"{{{document}}}".encode()).hexdigest()
    return (
        f'{{"version":{int(snapshot.version)},"sha256":{json.dumps(snapshot.sha256)},'
        f'"served_sha256":"{served_sha256}",'
        f'"sections":{json.dumps(sections, separators=(",", ":"))},"document":{{{document}}}}}'
    ).encode()


def _served_in_shards(ctx: AgentContext, version: int, have: int | None) -> bytes | None:
    """The body with the sharded sections in shards, those stored alike in version `have` left out."""
    with schema_context(ctx.schema_name):
        snapshot = _stored_version(ctx, version)
        if snapshot is None:
            return None
        held: dict[str, dict[str, str]] | None = None
        if have is not None:
            held = (
                ConfigSnapshot.objects.filter(cluster_id=ctx.cluster_id, version=have)
                .values_list("shards", flat=True)
                .first()
            )
        sharded = [key for key in SHARDED_SECTIONS if key in snapshot.sections]
        stored = {key: snapshot.sections[key] for key in snapshot.sections if key not in sharded}
        texts = section_texts(stored.values())
        pieces = {key: _served_pieces(key, *section_shards(snapshot, key)) for key in sharded}
    served = {key: _served_section(key, texts[sha]) for key, sha in stored.items()}
    # Hashed a shard at a time, as the v1 body joins them: the whole section (21 MB at 100,000
    # consumers) is never assembled.
    document_hash = hashlib.sha256(b"{")
    sections: dict[str, str] = {}
    shard_hashes: dict[str, dict[str, str]] = {}
    for position, key in enumerate(sorted(snapshot.sections)):
        document_hash.update(f"{',' if position else ''}{json.dumps(key)}:".encode())
        if key not in pieces:
            document_hash.update(served[key].encode())
            sections[key] = _served_hash(stored[key], texts[stored[key]], served[key])
            continue
        section_hash = hashlib.sha256()
        shard_hashes[key] = {}
        for number, (index, (_, text)) in enumerate(pieces[key].items()):
            data = text.encode()
            shard_hashes[key][index] = hashlib.sha256(data).hexdigest()
            # The section is "[" + the shards without their brackets, joined by "," + "]".
            for part in (b"," if number else b"[", memoryview(data)[1:-1]):
                section_hash.update(part)
                document_hash.update(part)
        closing = b"]" if pieces[key] else b"[]"
        section_hash.update(closing)
        document_hash.update(closing)
        sections[key] = section_hash.hexdigest()
    document_hash.update(b"}")
    sent = {
        key: {
            index: text
            for index, (sha, text) in shard_pieces.items()
            if held is None or held.get(key, {}).get(index) != sha
        }
        for key, shard_pieces in pieces.items()
    }
    shard_texts = ",".join(
        json.dumps(key)
        + ":{"
        + ",".join(
            f"{json.dumps(index)}:{json.dumps(text, ensure_ascii=False)}"
            for index, text in texts_sent.items()
        )
        + "}"
        for key, texts_sent in sorted(sent.items())
    )
    document = ",".join(f"{json.dumps(key)}:{text}" for key, text in sorted(served.items()))
    base = f'"base_version":{int(have)},' if held is not None and have is not None else ""
    return (
        f'{{"version":{int(snapshot.version)},"sha256":{json.dumps(snapshot.sha256)},'
        f'"served_sha256":"{document_hash.hexdigest()}",'
        f'"sections":{json.dumps(dict(sorted(sections.items())), separators=(",", ":"))},'
        f'"shards":{json.dumps(shard_hashes, separators=(",", ":"))},'
        f'"shard_texts":{{{shard_texts}}},{base}"document":{{{document}}}}}'
    ).encode()


def _served_pieces(key: str, shards: dict[str, str], known: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Each shard of a section, in the order of its index: (stored hash, text as served). Only
    the shards not served recently are read and decrypted; `known` (hash -> stored text) spares
    the reads of shards that are not stored. Call inside the organization's schema."""
    served = {sha: text for sha in shards.values() if (text := _served_shards.get(sha)) is not None}
    missing = set(shards.values()) - served.keys()
    stored = {**section_texts(missing - known.keys()), **known} if missing else {}
    for sha in missing:
        served[sha] = _served_section(key, stored[sha])
        _served_shards.put(sha, served[sha])
    return {index: (shards[index], served[shards[index]]) for index in sorted(shards, key=int)}


def served_snapshot(ctx: AgentContext) -> dict[str, Any] | None:
    """The latest snapshot as its cluster's agents receive it, parsed."""
    latest = latest_snapshot(ctx)
    found = served_snapshot_json(ctx, latest[0]) if latest else None
    return dict(json.loads(found[1])) if found else None
