"""What a plugin may know of the snapshot beside its own settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..directives import RenderError, RenderOptions
from ..protocol import Consumer


@dataclass(frozen=True)
class RenderContext:
    options: RenderOptions
    upstream_backends: dict[str, str] = field(default_factory=dict)  # upstream name -> backend
    consumers: tuple[Consumer, ...] = ()

    def path(self, relative: str) -> str:
        return f"{self.options.config_dir}/{relative}"

    def backend_of(self, upstream: str) -> str:
        try:
            return self.upstream_backends[upstream]
        except KeyError:
            raise RenderError(f"No upstream named {upstream!r} in the snapshot.") from None
