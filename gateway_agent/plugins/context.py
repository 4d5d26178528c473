"""What a plugin may know of the snapshot beside its own settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..directives import RenderError, RenderOptions
from ..protocol import Consumer


@dataclass(frozen=True)
class RenderContext:
    options: RenderOptions
    upstream_ids: dict[str, int] = field(default_factory=dict)  # upstream name -> id
    consumers: tuple[Consumer, ...] = ()

    def path(self, relative: str) -> str:
        return f"{self.options.config_dir}/{relative}"

    def upstream_id(self, upstream: str) -> int:
        try:
            return self.upstream_ids[upstream]
        except KeyError:
            raise RenderError(f"No upstream named {upstream!r} in the snapshot.") from None
