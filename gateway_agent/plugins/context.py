"""What a plugin may know of the snapshot beside its own settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..consumer_set import ConsumerSet
from ..directives import RenderError, RenderOptions


@dataclass(frozen=True)
class RenderContext:
    options: RenderOptions
    upstream_ids: dict[str, int] = field(default_factory=dict)  # upstream name -> id
    consumers: ConsumerSet = field(default_factory=ConsumerSet)
    key_auth_secret: str | None = None  # base64: what key-auth's HMAC keys are hashed with

    @property
    def key_schemes(self) -> frozenset[str]:
        """How the consumers' key-auth keys are hashed: "hmac-sha256", "sha256", or both."""
        return self.consumers.key_schemes

    def path(self, relative: str) -> str:
        return f"{self.options.config_dir}/{relative}"

    def upstream_id(self, upstream: str) -> int:
        try:
            return self.upstream_ids[upstream]
        except KeyError:
            raise RenderError(f"No upstream named {upstream!r} in the snapshot.") from None
