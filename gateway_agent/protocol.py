"""The wire contract between the control plane and gateway agents: the config snapshot.

A snapshot is the whole configuration of one gateway cluster. The control plane compiles its
catalog into this document, validates it against these models, and stores it with a version and
the SHA-256 of its canonical JSON (`canonical_json`). Every list is sorted by id, so the same
catalog always yields the same bytes. Secrets appear only as hashes (key-auth keys, basic-auth
passwords) or as ciphertext only the control plane can open for the cluster's agents (JWT and
hmac-auth secrets, the key-auth hashing secret, TLS private keys)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Plugin(_Model):
    name: str
    config: dict[str, Any] = Field(default_factory=dict)


class Target(_Model):
    host: str
    port: Annotated[int, Field(ge=1, le=65535)]
    weight: Annotated[int, Field(ge=0, le=256)] = 100


class ActiveHealthCheck(_Model):
    path: str = "/"
    interval_s: Annotated[float, Field(gt=0)] = 5
    healthy_threshold: Annotated[int, Field(ge=1)] = 2
    unhealthy_threshold: Annotated[int, Field(ge=1)] = 3


class PassiveHealthCheck(_Model):
    max_fails: Annotated[int, Field(ge=1)] = 3
    fail_timeout_s: Annotated[float, Field(gt=0)] = 10


class Timeouts(_Model):
    connect_s: Annotated[float, Field(gt=0)] = 5
    send_s: Annotated[float, Field(gt=0)] = 60
    read_s: Annotated[float, Field(gt=0)] = 60


LoadBalancing = Literal["roundrobin", "leastconn", "hash_header", "hash_client_ip", "hash_uri"]


class Upstream(_Model):
    id: int
    name: str
    targets: list[Target]
    load_balancing: LoadBalancing = "roundrobin"
    hash_header: str | None = None
    scheme: Literal["http", "https"] = "http"
    tls_sni: str | None = None
    tls_verify: bool = False
    tls_ca_pem: str | None = None
    timeouts: Timeouts = Timeouts()
    retries: Annotated[int, Field(ge=0, le=10)] = 1
    active_health_check: ActiveHealthCheck | None = None
    passive_health_check: PassiveHealthCheck | None = None


class Service(_Model):
    id: int
    name: str
    upstream_id: int
    plugins: list[Plugin] = Field(default_factory=list)


class PathMatch(_Model):
    type: Literal["prefix", "exact", "regex"]
    value: str


class HeaderMatch(_Model):
    name: str
    value: str
    type: Literal["exact", "regex"] = "exact"


class Route(_Model):
    id: int
    name: str
    service_id: int
    hosts: list[str] = Field(default_factory=list)
    paths: list[PathMatch] = Field(default_factory=list)
    methods: list[str] = Field(default_factory=list)
    headers: list[HeaderMatch] = Field(default_factory=list)
    priority: int = 0
    strip_path_prefix: str | None = None
    plugins: list[Plugin] = Field(default_factory=list)


class KeyAuthCredential(_Model):
    type: Literal["key-auth"] = "key-auth"
    id: int
    # The key's digest in hex: HMAC-SHA256 under the snapshot's `key_auth` secret, or plain
    # SHA-256 for keys stored before the cluster had one.
    key_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    scheme: Literal["hmac-sha256", "sha256"] = "sha256"


class JwtAuthCredential(_Model):
    type: Literal["jwt-auth"] = "jwt-auth"
    id: int
    key: str  # the value of the token's `key` claim that names this consumer
    algorithm: Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384"]
    secret_ciphertext: str | None = None  # HS*: encrypted at rest in the control plane
    secret: str | None = None  # HS*: only in the document served to the cluster's agents
    public_key_pem: str | None = None  # RS*/ES*


class BasicAuthCredential(_Model):
    type: Literal["basic-auth"] = "basic-auth"
    id: int
    username: str
    password_crypt: str  # crypt(3) SHA-512, as HAProxy userlists verify


class HmacAuthCredential(_Model):
    type: Literal["hmac-auth"] = "hmac-auth"
    id: int
    key_id: str
    secret_ciphertext: str | None = None  # encrypted at rest in the control plane
    secret: str | None = None  # only in the document served to the cluster's agents


Credential = Annotated[
    KeyAuthCredential | JwtAuthCredential | BasicAuthCredential | HmacAuthCredential,
    Field(discriminator="type"),
]


class Consumer(_Model):
    id: int
    username: str
    labels: dict[str, str] = Field(default_factory=dict)
    plugins: list[Plugin] = Field(default_factory=list)
    credentials: list[Credential] = Field(default_factory=list)
    # False: the gateway accepts none of the consumer's credentials (suspended, as by the portal).
    enabled: bool = True


class Certificate(_Model):
    id: int
    name: str
    snis: list[str]
    certificate_pem: str
    private_key_ciphertext: str | None = None  # stored documents
    private_key_pem: str | None = None  # only in the document served to the cluster's agents
    not_after: str  # ISO 8601, UTC


class KeyAuth(_Model):
    """The secret key-auth keys are hashed with (HMAC-SHA256), 32 bytes in base64."""

    secret_ciphertext: str | None = None  # stored documents
    secret: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9+/]{43}=$")] = None  # served to agents


class Quota(_Model):
    """The organization's plan allowance is used up: the gateway refuses every call with 429
    until `resets_at` (ISO 8601) or an upgrade lifts it with the next snapshot."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    limit: Annotated[int, Field(ge=0)]
    resets_at: Annotated[str, Field(max_length=40)]


class Snapshot(_Model):
    schema_version: Literal[1] = 1
    cluster_id: int
    global_plugins: list[Plugin] = Field(default_factory=list)
    upstreams: list[Upstream] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    consumers: list[Consumer] = Field(default_factory=list)
    key_auth: KeyAuth | None = None
    certificates: list[Certificate] = Field(default_factory=list)
    quota: Quota | None = None


_SECTION_TYPES: dict[str, TypeAdapter[Any]] = {
    name: TypeAdapter(cast(Any, field.annotation)) for name, field in Snapshot.model_fields.items()
}


class SnapshotParser:
    """Validates a served document section by section, remembering the last snapshot's
    sections by their SHA-256, so a change revalidates only what changed. Consumers are the
    exception: ten thousand validated consumers hold some 20 MB, more than the agent's whole
    budget allows. Sent in shards, they are left to the ShardStore; sent whole (a control plane
    without shards), they are validated again with each snapshot (about 70 ms)."""

    def __init__(self, forget: frozenset[str] = frozenset({"consumers"})) -> None:
        self._known: dict[str, Any] = {}
        self._forget = forget

    def parse(self, served: dict[str, Any]) -> Snapshot:
        """The snapshot `served` names. A sharded section (in `shards`) is left empty here: the
        agent holds it shard by shard (`ShardStore`)."""
        document, sections = served["document"], served.get("sections")
        if isinstance(sections, dict) and isinstance(served.get("shards"), dict):
            sections = {name: sha for name, sha in sections.items() if name not in served["shards"]}
        if not isinstance(document, dict) or not isinstance(sections, dict) or set(sections) != set(document):
            return Snapshot.model_validate(document)  # a control plane that does not name sections
        unknown = set(document) - set(_SECTION_TYPES)
        if unknown:
            raise ValueError(f"Unknown snapshot sections: {sorted(unknown)}")
        values = {
            name: self._known[sha]
            if sha in self._known
            else _SECTION_TYPES[name].validate_python(document[name])
            for name, sha in sections.items()
        }
        self._known = {sha: values[name] for name, sha in sections.items() if name not in self._forget}
        return Snapshot.model_construct(**values)


def canonical_json(document: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: one byte string per document."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def document_sha256(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()


# --- checking what the agent is sent ---------------------------------------------------------

# Versions are JSON numbers: below 2^53 every JSON reader agrees on their value.
MAX_VERSION = 2**53 - 1
_SHA256 = re.compile(r"[0-9a-f]{64}")


class SnapshotRefused(ValueError):
    """A served snapshot the agent must not use. `version` is the version it names when that
    much was valid (the poll then waits for the next one), None otherwise."""

    def __init__(self, message: str, version: int | None = None) -> None:
        super().__init__(message)
        self.version = version


class ShardsMissing(SnapshotRefused):
    """A sharded snapshot left out a shard the agent does not hold: ask again for every shard."""


@dataclass(frozen=True)
class VerifiedSnapshot:
    """A served snapshot whose every hash was recomputed from its content and matched.

    `sha256`: the snapshot's identity as the control plane stores it (secrets as ciphertext).
    `content_sha256`: the SHA-256 of the canonical JSON of the document as received (secrets
    usable): what the agent serves, recomputed here, so equal content means equal hash.
    `shards`: of a sharded body, each sharded section's shards in order, by their SHA-256;
    `shard_texts`: the texts of those received, by SHA-256 (the others, the agent holds)."""

    version: int
    sha256: str
    content_sha256: str
    served: dict[str, Any]
    shards: dict[str, list[str]] = field(default_factory=dict)
    shard_texts: dict[str, str] = field(default_factory=dict)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a JSON number")


def _sha256_field(served: dict[str, Any], name: str, version: int) -> str:
    value = served.get(name)
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise SnapshotRefused(f"version {version}: {name} is not 64 lowercase hex digits", version)
    return value


def _nothing_held(sha256: str) -> bytes | None:
    return None


def verify_served(body: bytes, held: Callable[[str], bytes | None] = _nothing_held) -> VerifiedSnapshot:
    """Decode a served snapshot body and check it before anything uses it: a bounded integer
    version, hashes that are 64 hex digits, and every hash recomputed from the content.

    Each section's hash is the SHA-256 of its canonical JSON (`canonical_json` of its value)
    as received; the document's is the SHA-256 of the canonical JSON of the whole document as
    received, given as `served_sha256` (the control plane sends it, as it sends the sections'
    hashes, over the document with secrets decrypted); from a control plane that does not send
    it, `sha256` must match instead (a document without secrets is served as stored)."""
    try:
        served = json.loads(body, parse_float=_finite, parse_constant=_no_constant)
    except (ValueError, TypeError, RecursionError) as exc:
        raise SnapshotRefused(f"not a snapshot: {exc}") from exc
    if not isinstance(served, dict):
        raise SnapshotRefused("not a snapshot: not a JSON object")
    version = served.get("version")
    if type(version) is not int or not 1 <= version <= MAX_VERSION:
        raise SnapshotRefused(
            f"not a snapshot: version must be an integer from 1 to 2^53-1, not {version!r:.40}"
        )
    sha256 = _sha256_field(served, "sha256", version)
    expected = _sha256_field(served, "served_sha256", version) if "served_sha256" in served else sha256
    document, sections = served.get("document"), served.get("sections", {})
    if not isinstance(document, dict):
        raise SnapshotRefused(f"version {version}: the document is not a JSON object", version)
    shards = _shard_lists(served, version)
    if not isinstance(sections, dict) or (sections and set(sections) != {*document, *shards}):
        raise SnapshotRefused(f"version {version}: the sections named are not the document's", version)
    if shards and (not sections or set(shards) & set(document)):
        raise SnapshotRefused(f"version {version}: the sharded sections are not named apart", version)
    try:
        received = _received_shards(served, shards, version)
        content_sha256 = _content_sha256(document, sections, shards, received, held, version)
    except UnicodeEncodeError as exc:  # a lone surrogate (`"\ud800"`) has no UTF-8
        raise SnapshotRefused(f"version {version}: text that is not Unicode: {exc.reason}", version) from exc
    if content_sha256 != expected:
        raise SnapshotRefused(f"version {version}: the document does not match its sha256", version)
    return VerifiedSnapshot(version, sha256, content_sha256, served, shards, received)


def _content_sha256(
    document: dict[str, Any],
    sections: dict[str, Any],
    shards: dict[str, list[str]],
    received: dict[str, str],
    held: Callable[[str], bytes | None],
    version: int,
) -> str:
    """The SHA-256 of the whole document's canonical JSON, each section's checked on the way."""
    whole = hashlib.sha256(b"{")
    for position, name in enumerate(sorted({*document, *shards})):
        whole.update((b"," if position else b"") + json.dumps(name, ensure_ascii=False).encode() + b":")
        section = hashlib.sha256()
        for piece in _section_pieces(name, document, shards, received, held, version):
            section.update(piece)
            whole.update(piece)
        claimed = sections.get(name)
        if claimed is not None and claimed != section.hexdigest():
            if any(sha not in received for sha in shards.get(name, ())):
                # What the agent holds may be what is wrong (a file damaged on disk).
                raise ShardsMissing(f"version {version}: the shards held do not make {name!r}", version)
            raise SnapshotRefused(
                f"version {version}: section {name!r:.60} does not match its sha256", version
            )
    whole.update(b"}")
    return whole.hexdigest()


# The sections an agent takes in shards, and how a shard's index is written.
SHARDED_SECTIONS = frozenset({"consumers"})
_SHARD_INDEX = re.compile(r"0|[1-9][0-9]{0,11}")


def _shard_lists(served: dict[str, Any], version: int) -> dict[str, list[str]]:
    """`shards` of a sharded body: each section's shard hashes, in the order of their indexes."""
    named = served.get("shards", {})
    if not isinstance(named, dict) or not set(named) <= SHARDED_SECTIONS:
        raise SnapshotRefused(
            f"version {version}: shards are named for sections this agent does not shard", version
        )
    lists = {}
    for name, by_index in named.items():
        if not isinstance(by_index, dict) or not all(
            isinstance(index, str) and _SHARD_INDEX.fullmatch(index) for index in by_index
        ):
            raise SnapshotRefused(
                f"version {version}: the shards of {name!r} are not named by index", version
            )
        lists[name] = [_sha256_field(by_index, index, version) for index in sorted(by_index, key=int)]
    return lists


def _received_shards(served: dict[str, Any], shards: dict[str, list[str]], version: int) -> dict[str, str]:
    """The shard texts sent, by their SHA-256, each checked against the hash `shards` names."""
    texts = served.get("shard_texts", {})
    if not isinstance(texts, dict) or not set(texts) <= set(shards):
        raise SnapshotRefused(f"version {version}: shard texts for sections not sharded", version)
    # Kept as the decoded strings: a copy of 100,000 consumers' text is 20 MB.
    received: dict[str, str] = {}
    for name, by_index in texts.items():
        named = served["shards"][name]
        if not isinstance(by_index, dict) or not set(by_index) <= set(named):
            raise SnapshotRefused(f"version {version}: shard texts of {name!r} not among its shards", version)
        for index, text in by_index.items():
            # One entity at least: the section's text joins the shards' insides with commas.
            if not isinstance(text, str) or len(text) < 3 or text[0] != "[" or text[-1] != "]":
                raise SnapshotRefused(
                    f"version {version}: shard {name}/{index:.12} is not a JSON list", version
                )
            if hashlib.sha256(text.encode()).hexdigest() != named[index]:
                raise SnapshotRefused(
                    f"version {version}: shard {name}/{index:.12} does not match its sha256", version
                )
            received[named[index]] = text
    return received


def _section_pieces(
    name: str,
    document: dict[str, Any],
    shards: dict[str, list[str]],
    received: dict[str, str],
    held: Callable[[str], bytes | None],
    version: int,
) -> Iterator[bytes | memoryview]:
    """A section's canonical JSON in pieces: whole, or `[` + its shards' insides joined by `,` +
    `]`, the shards not sent read from what the agent holds."""
    if name not in shards:
        yield canonical_json(document[name])
        return
    yield b"["
    for position, sha in enumerate(shards[name]):
        if position:
            yield b","
        sent = received.get(sha)
        if sent is not None:
            yield sent[1:-1].encode()
            continue
        text = held(sha)
        if text is None:
            raise ShardsMissing(
                f"version {version}: shard {sha[:12]} of {name!r} was not sent and is not held", version
            )
        yield memoryview(text)[1:-1]
    yield b"]"


# --- the agent API (/agent/v1/) ------------------------------------------------------------


class RegisterRequest(_Model):
    hostname: Annotated[str, Field(min_length=1, max_length=253)]
    agent_version: Annotated[str, Field(min_length=1, max_length=50)]
    haproxy_version: Annotated[str, Field(max_length=50)] = ""
    labels: dict[Annotated[str, Field(max_length=63)], Annotated[str, Field(max_length=253)]] = Field(
        default_factory=dict, max_length=50
    )
    # Re-registering with the id it had keeps an instance's identity across restarts.
    instance_id: str | None = None


class RegisterResponse(_Model):
    instance_id: str
    cluster_id: int
    heartbeat_interval_s: float


class Heartbeat(_Model):
    instance_id: str
    applied_version: Annotated[int, Field(ge=0)] | None = None
    last_error: Annotated[str, Field(max_length=4000)] | None = None


class ServedSnapshot(_Model):
    """The answer to GET /agent/v1/config: a version and its document with secrets usable."""

    version: int
    sha256: str  # of the document as stored (secrets as ciphertext): the snapshot's identity
    # Each top-level key of the document and the SHA-256 of its canonical JSON as served (with
    # secrets usable): an agent checks each and revalidates only those it has not seen before.
    sections: dict[str, str] = Field(default_factory=dict)
    served_sha256: str | None = None  # of the document as served; agents check it
    document: Snapshot


# --- usage (POST /agent/v1/usage) ------------------------------------------------------------

StatusClass = Literal["1xx", "2xx", "3xx", "4xx", "5xx"]


# Upper bounds (ms) of the latency histogram's buckets; one more bucket holds anything slower.
LATENCY_BOUNDS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
# The status codes counted one by one (the others by their class alone): the redirects, client
# errors and server errors a team tells apart, the gateway's own refusals among them. A success
# is counted by its class: a 2xx code of its own would cost every call a test. Fourteen: what fits
# the one HAProxy rule that counts an answer (metering.answer_lines).
STATUS_CODES = (301, 302, 304, 400, 401, 403, 404, 413, 422, 429, 500, 502, 503, 504)


class UsageItem(_Model):
    """Requests of one route and consumer, with one status class, in one UTC minute; with one
    `status_code` of STATUS_CODES, or none: the class's other codes. `latency_ms_buckets`: how
    many upstream answers (of the route and consumer, whatever their class) took how long, per
    LATENCY_BOUNDS_MS bucket."""

    minute: Annotated[int, Field(ge=0)]  # Unix time of the minute's start (a multiple of 60)
    route_id: Annotated[int, Field(ge=0)]  # 0: no route matched
    consumer: Annotated[str, Field(max_length=100)] = ""  # "": anonymous
    status_class: StatusClass
    status_code: Annotated[int, Field(ge=100, le=599)] | None = None
    requests: Annotated[int, Field(ge=1)]
    bytes_in: Annotated[int, Field(ge=0)] = 0
    bytes_out: Annotated[int, Field(ge=0)] = 0
    # A factory, not `= []`: pydantic deep-copies a mutable default for every item, which cost
    # a third of the usage consumer's time.
    latency_ms_buckets: Annotated[
        list[Annotated[int, Field(ge=0)]], Field(default_factory=list, max_length=len(LATENCY_BOUNDS_MS) + 1)
    ]

    @model_validator(mode="after")
    def _code_in_its_class(self) -> UsageItem:
        if self.status_code is not None and str(self.status_code)[0] != self.status_class[0]:
            raise ValueError(f"status_code {self.status_code} is not of class {self.status_class}")
        return self


class UsageBatch(_Model):
    """What an agent counted over one time window. `batch_id` is unique and stays the same on
    every retry: the control plane counts a batch once however often it arrives."""

    batch_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    instance_id: Annotated[str, Field(min_length=1, max_length=64)]
    window_start: Annotated[float, Field(ge=0)]
    window_end: Annotated[float, Field(ge=0)]
    items: Annotated[list[UsageItem], Field(max_length=10_000)]


class Report(_Model):
    """POST /agent/v1/report: a heartbeat and, when the agent has usage to deliver, the oldest
    batch of its spool: one request every 10 s where there were two (docs/gateway.md)."""

    heartbeat: Heartbeat
    usage: UsageBatch | None = None


class ReportAnswer(_Model):
    """The answer to a report (200): whether its batch was taken (`accepted`: committed to the
    intake queue, as a 202 from /agent/v1/usage; None when it had none), and what became of its
    heartbeat: `stored`, `unknown instance` (register again) or `not stored` (the control plane
    could not keep it now; the next one will do)."""

    usage: Literal["accepted"] | None = None
    heartbeat: Literal["stored", "unknown instance", "not stored"]
