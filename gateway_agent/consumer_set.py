"""What rendering needs of a snapshot's consumers, in a compact form built per shard and merged.

Validated consumers cost some 2 KB each: an agent holding 100,000 of them would need 200 MB. It
keeps instead, for each shard of 1,000 (`protocol.SHARD_WIDTH`), the lines its consumers add to
the map files and the little else plugins ask of them (some 300 bytes a consumer), and validates
only the shards a change sends. Rendering the merged set of every shard gives the same files,
byte for byte, as rendering the consumers themselves."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from .directives import RenderError, quote
from .protocol import Consumer


@dataclass(frozen=True)
class JwtEntry:
    """A jwt-auth credential of an enabled consumer."""

    credential_id: int
    key: str
    algorithm: str
    secret: str | None
    public_key_pem: str | None
    username: str


@dataclass(frozen=True)
class HmacEntry:
    """An hmac-auth credential of an enabled consumer, with its secret usable."""

    key_id: str
    secret: str
    username: str


@dataclass(frozen=True)
class ConsumerSet:
    # Lines of the key-auth maps ("<digest> <consumer>"), by how the key is hashed.
    key_lines: list[str] = field(default_factory=list)
    hmac_key_lines: list[str] = field(default_factory=list)
    # basic-auth: "<username> <consumer>" lines, and the userlist's `user` lines.
    user_lines: list[str] = field(default_factory=list)
    userlist: list[str] = field(default_factory=list)
    jwt: list[JwtEntry] = field(default_factory=list)
    hmac: list[HmacEntry] = field(default_factory=list)
    # Each plugin's settings by the name of a consumer that sets its own (enabled or not).
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The enabled consumers' names, and their names by label pair (consumer-restriction).
    usernames: frozenset[str] = frozenset()
    by_label: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, consumers: Iterable[Consumer]) -> ConsumerSet:
        """In the consumers' order: a suspended consumer's credentials, name and labels are left
        out (the gateway accepts none of them: 401); its plugin settings are kept."""
        built = cls()
        names: set[str] = set()
        for consumer in consumers:
            for plugin in consumer.plugins:
                built.plugins.setdefault(plugin.name, {})[consumer.username] = plugin.config
            if not consumer.enabled:
                continue
            names.add(consumer.username)
            for label in consumer.labels.items():
                built.by_label.setdefault(label, []).append(consumer.username)
            for credential in consumer.credentials:
                if credential.type == "key-auth":
                    lines = built.hmac_key_lines if credential.scheme == "hmac-sha256" else built.key_lines
                    lines.append(f"{credential.key_sha256} {consumer.username}")
                elif credential.type == "basic-auth":
                    if not credential.username or any(c.isspace() for c in credential.username):
                        raise RenderError(f"basic-auth username {credential.username!r} cannot be used.")
                    built.user_lines.append(f"{credential.username} {consumer.username}")
                    built.userlist.append(
                        f"    user {quote(credential.username)} password {quote(credential.password_crypt)}"
                    )
                elif credential.type == "jwt-auth":
                    built.jwt.append(
                        JwtEntry(
                            credential.id,
                            credential.key,
                            credential.algorithm,
                            credential.secret,
                            credential.public_key_pem,
                            consumer.username,
                        )
                    )
                elif credential.type == "hmac-auth" and credential.secret:
                    built.hmac.append(HmacEntry(credential.key_id, credential.secret, consumer.username))
        return replace(built, usernames=frozenset(names))

    @classmethod
    def merge(cls, parts: Iterable[ConsumerSet]) -> ConsumerSet:
        """The set of consecutive shards' consumers, `parts` in the order of their shards."""
        merged = cls()
        names: set[str] = set()
        for part in parts:
            merged.key_lines.extend(part.key_lines)
            merged.hmac_key_lines.extend(part.hmac_key_lines)
            merged.user_lines.extend(part.user_lines)
            merged.userlist.extend(part.userlist)
            merged.jwt.extend(part.jwt)
            merged.hmac.extend(part.hmac)
            for plugin, by_name in part.plugins.items():
                merged.plugins.setdefault(plugin, {}).update(by_name)
            names |= part.usernames
            for label, label_names in part.by_label.items():
                merged.by_label.setdefault(label, []).extend(label_names)
        return replace(merged, usernames=frozenset(names))

    @property
    def key_schemes(self) -> frozenset[str]:
        """How the consumers' key-auth keys are hashed: "hmac-sha256", "sha256", or both."""
        return frozenset(
            scheme
            for scheme, lines in (("sha256", self.key_lines), ("hmac-sha256", self.hmac_key_lines))
            if lines
        )
