"""What the control plane serves for self-hosted gateways: the agent wheel (built once from
`gateway_agent/`), the install script, filled in with this control plane's URL and the
wheel's SHA-256, and the gateway's Helm chart packaged as `helm package` would."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
from functools import cache
from pathlib import Path

import yaml

import gateway_agent

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("install.sh")
GATEWAY_CHART = ROOT / "helm" / "gateway"
_lock = threading.Lock()


def wheel_name() -> str:
    return f"gateway_agent-{gateway_agent.__version__}-py3-none-any.whl"


def agent_wheel(dist_dir: Path) -> Path:
    """The agent's wheel, built on first use into GATEWAY_AGENT_DIST_DIR."""
    dist = Path(dist_dir)
    wheel = dist / wheel_name()
    with _lock:
        if not wheel.exists():
            dist.mkdir(parents=True, exist_ok=True)
            # Built from a clean copy: pip builds in the source tree, and a build/ folder left
            # there by an earlier build would slip stale modules into the wheel.
            with tempfile.TemporaryDirectory() as work:
                source = Path(work) / "gateway_agent"
                shutil.copytree(
                    ROOT / "gateway_agent",
                    source,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
                )
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "wheel",
                        "--quiet",
                        "--no-deps",
                        "--wheel-dir",
                        str(dist),
                        str(source),
                    ],
                    check=True,
                    capture_output=True,
                )
    return wheel


def install_script(control_plane_url: str, dist_dir: Path) -> str:
    sha256 = hashlib.sha256(agent_wheel(dist_dir).read_bytes()).hexdigest()
    return (
        SCRIPT.read_text()
        .replace("__CONTROL_PLANE_URL__", control_plane_url.rstrip("/"))
        .replace("__AGENT_VERSION__", gateway_agent.__version__)
        .replace("__AGENT_WHEEL_SHA256__", sha256)
    )


@cache
def chart_name() -> str:
    chart = yaml.safe_load((GATEWAY_CHART / "Chart.yaml").read_text())
    return f"{chart['name']}-{chart['version']}.tgz"


@cache
def gateway_chart() -> bytes:
    """helm/gateway as a chart archive (`<name>/Chart.yaml`, ...), which `helm install` takes by
    URL. Built from the files in a fixed order with fixed times, so the same chart is the same
    bytes."""
    name = chart_name().rsplit("-", 1)[0]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(p for p in GATEWAY_CHART.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(f"{name}/{path.relative_to(GATEWAY_CHART).as_posix()}")
            data = path.read_bytes()
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
