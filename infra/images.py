"""The images this repository builds, by name and tag, read from `images/versions.env`: the one
place `make images`, the Helm charts' defaults, the AWS deploy and the install page take them
from (tests/unit/test_image_versions.py holds them together)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

VERSIONS_FILE = Path(__file__).resolve().parents[1] / "images" / "versions.env"


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """The file's KEY=value lines (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}: not KEY=value: {line!r}")
        values[key.strip()] = value.strip()
    return values


@dataclass(frozen=True)
class Image:
    repository: str
    tag: str

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"


@cache
def gateway_image() -> Image:
    """The gateway's image (HAProxy and the agent): images/gateway/Containerfile."""
    versions = read_versions()
    return Image(versions["GATEWAY_IMAGE"], versions["GATEWAY_TAG"])


@cache
def control_plane_image() -> Image:
    """The control plane's image (web, worker, beat, usage consumer): images/control-plane/Containerfile."""
    versions = read_versions()
    return Image(versions["CONTROL_PLANE_IMAGE"], versions["CONTROL_PLANE_TAG"])
