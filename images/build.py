"""`make images`: the gateway and control-plane images, built the same way every time, without a
Docker engine.

1. A Debian base by mmdebstrap from the archive images/versions.env names, imported with
   `podman import` as a local image; its labels record the archive's sources, the Release dates
   of its suites (the instant snapshot.debian.org holds that package set at) and its packages.
   Reused while it exists (REFRESH_BASE=1, or --refresh-base, makes it again).
2. The agent's wheel (as the control plane serves it, infra/selfhost/artifacts.py), and the
   versions of every Python package the tests ran with (this virtualenv's, as constraints).
3. `buildah bud --isolation chroot` of images/gateway and images/control-plane on that base,
   tagged with the names and tags of images/versions.env, with the OCI labels.
4. Beside each image in .run/images/: its SBOM (SPDX 2.3 JSON: every Debian and Python package in
   it, read from the image's own dpkg database and dist-info folders), a `docker load`-able
   archive, and report.json (sizes, build times, package counts).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.parser import HeaderParser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infra.images import Image, read_versions  # noqa: E402
from infra.selfhost import artifacts  # noqa: E402

OUT = ROOT / ".run" / "images"
BASE_REPOSITORY = "localhost/gateway-saas-base"
LABEL = "org.gateway-saas"
# What the control plane's image holds of the repository (besides the console's build).
PROJECT_PATHS = (
    "manage.py",
    "core",
    "tenants",
    "identity",
    "sso",
    "saas",
    "billing",
    "infra",
    "gateway_agent",
    "helm/gateway",
    "images/versions.env",
)
# Left out of a minimal Debian: manuals, documentation but the licences, translations.
DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/info/*",
)


def log(message: str) -> None:
    print(f"[images] {message}", flush=True)


def run(command: Sequence[str], **kwargs: object) -> str:
    """Run a command; its standard output. Its error output goes through."""
    result = subprocess.run(list(command), check=True, stdout=subprocess.PIPE, text=True, **kwargs)  # type: ignore[call-overload]
    return str(result.stdout)


def image_exists(reference: str) -> bool:
    return subprocess.run(["podman", "image", "exists", reference], check=False).returncode == 0


def image_inspect(reference: str) -> dict[str, object]:
    found = json.loads(run(["podman", "image", "inspect", reference]))
    return dict(found[0])


def image_labels(reference: str) -> dict[str, str]:
    config = image_inspect(reference).get("Config")
    return dict(config.get("Labels") or {}) if isinstance(config, dict) else {}


def git_revision() -> str:
    revision = run(["git", "rev-parse", "HEAD"], cwd=ROOT).strip()
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT, check=False).returncode != 0
    return revision + ("-dirty" if dirty else "")


@dataclass
class Built:
    image: str
    image_id: str = ""
    size_bytes: int = 0
    build_seconds: float = 0.0
    debian_packages: int = 0
    python_packages: int = 0
    sbom: str = ""
    archive: str = ""
    labels: dict[str, str] = field(default_factory=dict)


# --- 1. the Debian base -----------------------------------------------------------------------


def _sources(versions: dict[str, str]) -> list[str]:
    suite = versions["DEBIAN_SUITE"]
    return [
        f"deb {versions['DEBIAN_MIRROR']} {suite} main",
        f"deb {versions['DEBIAN_MIRROR']} {suite}-updates main",
        f"deb {versions['DEBIAN_SECURITY_MIRROR']} {suite}-security main",
    ]


def _release_dates(lists: Path) -> dict[str, str]:
    """Each suite's Release date (ISO 8601, UTC), from the InRelease files apt fetched."""
    dates: dict[str, str] = {}
    for release in sorted(lists.glob("*InRelease")):
        suite = date = ""
        for line in release.read_text(errors="replace").splitlines():
            if line.startswith("Codename:"):  # bookworm-security, not oldstable-security
                suite = line.split(":", 1)[1].strip()
            elif line.startswith("Date:"):
                parsed = datetime.strptime(line.split(":", 1)[1].strip(), "%a, %d %b %Y %H:%M:%S %Z")
                date = parsed.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if line.startswith("-----BEGIN PGP SIGNATURE") or (suite and date):
                break
        if date:
            dates[suite or release.name] = date
    return dates


def build_base(versions: dict[str, str], refresh: bool) -> tuple[str, float]:
    """The base image's reference, and the seconds it took (0 when reused)."""
    reference = f"{BASE_REPOSITORY}:{versions['DEBIAN_SUITE']}"
    if image_exists(reference) and not refresh:
        log(f"base {reference}: reused (REFRESH_BASE=1 makes it again)")
        return reference, 0.0
    started = time.monotonic()
    work = OUT / "base"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rootfs, lists, packages = work / "rootfs.tar", work / "lists", work / "packages.txt"
    lists.mkdir()
    command = [
        "mmdebstrap",
        "--variant=apt",
        "--mode=root",
        "--format=tar",
        "--include=ca-certificates",
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        '--aptopt=Acquire::Retries "3"',
        *(f"--dpkgopt={option}" for option in DPKG_EXCLUDES),
        # What the package set is: the Release files apt used, and every package's version.
        f'--customize-hook=cp "$1"/var/lib/apt/lists/*InRelease {lists}/',
        "--customize-hook=chroot \"$1\" dpkg-query -W -f '${Package}\\t${Version}\\n' > " + str(packages),
        # The Python the images will get: what the host's pip fetches for (python_full_version).
        f'--customize-hook=chroot "$1" apt-cache show --no-all-versions python3.11 > {work}/python3',
        versions["DEBIAN_SUITE"],
        str(rootfs),
        *_sources(versions),
    ]
    log("base: mmdebstrap " + versions["DEBIAN_SUITE"])
    run(command)
    dates = _release_dates(lists)
    python = re.search(r"^Version: (\d+\.\d+\.\d+)", (work / "python3").read_text(), flags=re.MULTILINE)
    package_list = packages.read_text()
    labels = {
        f"{LABEL}.debian.suite": versions["DEBIAN_SUITE"],
        f"{LABEL}.debian.sources": " | ".join(_sources(versions)),
        f"{LABEL}.debian.release-dates": " ".join(f"{suite}={date}" for suite, date in dates.items()),
        # The snapshot.debian.org instant that holds this package set: the latest Release.
        f"{LABEL}.debian.snapshot": max(dates.values()).replace("-", "").replace(":", "") if dates else "",
        f"{LABEL}.debian.packages": str(len(package_list.splitlines())),
        f"{LABEL}.debian.packages-sha256": hashlib.sha256(package_list.encode()).hexdigest(),
        f"{LABEL}.debian.python3": python.group(1) if python else "",
        "org.opencontainers.image.title": "gateway-saas-base",
        "org.opencontainers.image.description": "Debian made by mmdebstrap (variant apt)",
    }
    changes: list[str] = []
    for key, value in labels.items():
        changes += ["--change", f"LABEL {key}={json.dumps(value)}"]
    changes += ["--change", 'CMD ["/bin/bash"]']
    log(f"base: podman import -> {reference}")
    run(["podman", "import", "--quiet", *changes, str(rootfs), reference])
    rootfs.unlink()  # only the image is kept
    return reference, time.monotonic() - started


# --- 2. the build contexts ------------------------------------------------------------------


def constraints() -> str:
    """The exact versions of every package in this virtualenv, where the tests ran."""
    frozen = run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"])
    return "".join(line + "\n" for line in frozen.splitlines() if "==" in line and " @ " not in line)


def project_requirements() -> str:
    """The control plane's dependencies (pyproject.toml's [project] dependencies)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return "".join(requirement + "\n" for requirement in project["dependencies"])


def tracked_files(paths: Sequence[str]) -> list[str]:
    listed = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *paths], cwd=ROOT
    )
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def download(requirements: Sequence[str], pinned: Path, into: Path, python: str) -> None:
    """The distributions `requirements` need, at the pinned versions, as wheels, fetched here with
    this machine's pip (its index and certificates): the images install them with no index.
    `python` is the images' Python (Debian's): what its markers want beyond this Python's
    (e.g. `python_full_version < "3.11.3"`) is fetched too."""
    into.mkdir(parents=True, exist_ok=True)
    fetch = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", str(into)]
    run([*fetch, "--constraint", str(pinned), *requirements])
    target = {"python_full_version": python, "python_version": ".".join(python.split(".")[:2]), "extra": ""}
    while missing := _wanted_only_by(target, into):
        log(f"for Python {python}: also {', '.join(sorted(missing))}")
        run([*fetch, "--constraint", str(pinned), *sorted(missing)])


def _wanted_only_by(target: dict[str, str], wheels: Path) -> set[str]:
    """Requirements of the wheels in `wheels` that the target Python's markers select and no
    wheel there provides."""
    have, wanted = set(), set()
    for wheel in wheels.glob("*.whl"):
        have.add(canonicalize_name(wheel.name.split("-", 1)[0]))
        with zipfile.ZipFile(wheel) as archive:
            metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            headers = HeaderParser().parsestr(
                archive.read(metadata).decode(errors="replace"), headersonly=True
            )
        for line in headers.get_all("Requires-Dist") or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(target):
                wanted.add(str(requirement.name))
    return {name for name in wanted if canonicalize_name(name) not in have}


def gateway_context(context: Path, pinned: str, python: str) -> Path:
    wheel = artifacts.agent_wheel(context)
    (context / "constraints.txt").write_text(pinned)
    download([str(wheel)], context / "constraints.txt", context / "dists", python)
    (context / "dists" / wheel.name).unlink(missing_ok=True)
    return wheel


def control_plane_context(context: Path, pinned: str, wheel: Path, python: str) -> None:
    console = ROOT / "frontend" / "dist"
    if not (console / "index.html").is_file():
        raise SystemExit("The console is not built: run `make console` first (make images does).")
    app = context / "app"
    for name in tracked_files(PROJECT_PATHS):
        target = app / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    shutil.copytree(console, app / "frontend" / "dist")
    (app / "dist").mkdir()
    shutil.copy2(wheel, app / "dist" / wheel.name)  # what /downloads/ serves to VMs
    shutil.copy2(ROOT / "images" / "control-plane" / "entrypoint.sh", app / "entrypoint.sh")
    (context / "requirements.txt").write_text(project_requirements())
    (context / "constraints.txt").write_text(pinned)
    download(
        ["-r", str(context / "requirements.txt")], context / "constraints.txt", context / "dists", python
    )


# --- 3. the images --------------------------------------------------------------------------


def oci_labels(image: Image, versions: dict[str, str], title: str, description: str) -> dict[str, str]:
    return {
        "org.opencontainers.image.title": title,
        "org.opencontainers.image.description": description,
        "org.opencontainers.image.source": versions["SOURCE_URL"],
        "org.opencontainers.image.revision": git_revision(),
        "org.opencontainers.image.version": image.tag,
        "org.opencontainers.image.created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "org.opencontainers.image.ref.name": image.reference,
    }


def bud(containerfile: Path, context: Path, base: str, image: Image, labels: dict[str, str]) -> float:
    started = time.monotonic()
    command = [
        "buildah",
        "bud",
        "--isolation",
        "chroot",
        "--network",
        "host",
        "--format",
        "docker",  # keeps HEALTHCHECK, which the OCI image format has no field for
        "--layers",
        "--pull-never",
        "--build-arg",
        f"BASE={base}",
        "--tag",
        image.reference,
        "--file",
        str(containerfile),
    ]
    # Labels go on as the last step: they change with every commit, the layers should not.
    for key, value in labels.items():
        command += ["--label", f"{key}={value}"]
    log(f"buildah bud {containerfile.relative_to(ROOT)} -> {image.reference}")
    subprocess.run([*command, str(context)], check=True)
    return time.monotonic() - started


# --- 4. what is in them ---------------------------------------------------------------------


@contextmanager
def mounted(reference: str) -> Iterator[Path]:
    """The image's root filesystem, read-only by convention, through a throwaway container."""
    container = run(["buildah", "from", "--pull-never", "--quiet", reference]).strip()
    try:
        yield Path(run(["buildah", "mount", container]).strip())
    finally:
        subprocess.run(["buildah", "rm", container], check=False, stdout=subprocess.DEVNULL)


def debian_packages(rootfs: Path) -> list[tuple[str, str, str]]:
    """(name, version, architecture) of every installed Debian package."""
    found = []
    for stanza in (rootfs / "var/lib/dpkg/status").read_text().split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", stanza, flags=re.MULTILINE))
        if fields.get("Status", "").endswith(" installed"):
            found.append((fields["Package"], fields["Version"], fields.get("Architecture", "")))
    return sorted(found)


def python_packages(rootfs: Path) -> list[tuple[str, str, str]]:
    """(name, version, where) of every Python distribution in the image's virtualenvs and
    Debian's Python."""
    found = set()
    for pattern in (
        "opt/*/lib/python3*/site-packages/*.dist-info",
        "usr/lib/python3/dist-packages/*.dist-info",
    ):
        for info in rootfs.glob(pattern):
            metadata = info / "METADATA"
            if metadata.is_file():
                headers = HeaderParser().parsestr(metadata.read_text(errors="replace"), headersonly=True)
                where = "/" + str(info.parent.relative_to(rootfs))
                found.add((str(headers["Name"]), str(headers["Version"]), where))
    return sorted(found)


def spdx(
    image: Image, image_id: str, debs: list[tuple[str, str, str]], wheels: list[tuple[str, str, str]]
) -> dict[str, object]:
    """An SPDX 2.3 document: the image, and every package in it by its package URL."""

    def spdx_id(*parts: str) -> str:
        return "SPDXRef-" + re.sub(r"[^A-Za-z0-9.-]", "-", "-".join(parts))

    root = spdx_id("image", image.repository.rsplit("/", 1)[-1])
    packages: list[dict[str, object]] = [
        {
            "SPDXID": root,
            "name": image.repository,
            "versionInfo": image.tag,
            "downloadLocation": "NOASSERTION",
            "checksums": [{"algorithm": "SHA256", "checksumValue": image_id}],
            "primaryPackagePurpose": "CONTAINER",
        }
    ]
    relationships = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": root}
    ]
    for name, version, arch in debs:
        packages.append(
            {
                "SPDXID": spdx_id("deb", name, version),
                "name": name,
                "versionInfo": version,
                "downloadLocation": "NOASSERTION",
                "externalRefs": [
                    {
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": f"pkg:deb/debian/{name}@{version}?arch={arch}&distro=debian-12",
                    }
                ],
            }
        )
    for name, version, where in wheels:
        packages.append(
            {
                "SPDXID": spdx_id("pypi", name, version, where),
                "name": name,
                "versionInfo": version,
                "downloadLocation": "NOASSERTION",
                "sourceInfo": f"installed in {where}",
                "externalRefs": [
                    {
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": f"pkg:pypi/{name.lower().replace('_', '-')}@{version}",
                    }
                ],
            }
        )
    relationships += [
        {"spdxElementId": root, "relationshipType": "CONTAINS", "relatedSpdxElement": str(p["SPDXID"])}
        for p in packages[1:]
    ]
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": image.reference,
        "documentNamespace": f"https://gateway-saas.invalid/spdx/{image.reference}/{image_id}",
        "creationInfo": {
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "creators": ["Tool: gateway-saas images/build.py"],
        },
        "packages": packages,
        "relationships": relationships,
    }


def describe(image: Image, build_seconds: float, archive: bool) -> Built:
    inspected = image_inspect(image.reference)
    image_id = str(inspected["Id"])
    labels = image_labels(image.reference)
    with mounted(image.reference) as rootfs:
        debs, wheels = debian_packages(rootfs), python_packages(rootfs)
    stem = image.repository.rsplit("/", 1)[-1] + "-" + image.tag
    sbom = OUT / f"{stem}.spdx.json"
    sbom.write_text(json.dumps(spdx(image, image_id, debs, wheels), indent=1) + "\n")
    built = Built(
        image=image.reference,
        image_id=image_id,
        size_bytes=int(str(inspected["Size"])),
        build_seconds=round(build_seconds, 1),
        debian_packages=len(debs),
        python_packages=len(wheels),
        sbom=str(sbom.relative_to(ROOT)),
        labels=labels,
    )
    if archive:
        target = OUT / f"{stem}.docker.tar"
        target.unlink(missing_ok=True)
        run(
            [
                "podman",
                "save",
                "--quiet",
                "--format",
                "docker-archive",
                "--output",
                str(target),
                image.reference,
            ]
        )
        built.archive = str(target.relative_to(ROOT))
    log(
        f"{image.reference}: {built.size_bytes / 1e6:.0f} MB, built in {built.build_seconds:.0f} s, "
        f"SBOM {built.sbom}: {built.debian_packages} Debian and {built.python_packages} Python packages"
    )
    return built


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--refresh-base", action="store_true", default=os.environ.get("REFRESH_BASE") == "1")
    parser.add_argument("--no-archive", action="store_true", help="skip the docker-archive files")
    parser.add_argument("--only", choices=("gateway", "control-plane"), action="append")
    args = parser.parse_args(argv)
    wanted = args.only or ["gateway", "control-plane"]
    versions = read_versions()
    gateway = Image(versions["GATEWAY_IMAGE"], versions["GATEWAY_TAG"])
    control_plane = Image(versions["CONTROL_PLANE_IMAGE"], versions["CONTROL_PLANE_TAG"])
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    base, base_seconds = build_base(versions, args.refresh_base)
    report: dict[str, object] = {"base": base, "base_seconds": round(base_seconds, 1), "images": []}
    built: list[Built] = []
    pinned = constraints()
    with tempfile.TemporaryDirectory(prefix="images-", dir=OUT) as work:
        gateway_dir = Path(work) / "gateway"
        gateway_dir.mkdir()
        python = str(dict(image_labels(base)).get(f"{LABEL}.debian.python3") or "")
        if not python:
            raise SystemExit(f"{base} does not say its Python: make it again (REFRESH_BASE=1).")
        wheel = gateway_context(gateway_dir, pinned, python)
        if "gateway" in wanted:
            seconds = bud(
                ROOT / "images" / "gateway" / "Containerfile",
                gateway_dir,
                base,
                gateway,
                oci_labels(gateway, versions, "gateway-agent", "HAProxy and the gateway agent"),
            )
            built.append(describe(gateway, seconds, not args.no_archive))
        if "control-plane" in wanted:
            context = Path(work) / "control-plane"
            context.mkdir()
            control_plane_context(context, pinned, wheel, python)
            seconds = bud(
                ROOT / "images" / "control-plane" / "Containerfile",
                context,
                base,
                control_plane,
                oci_labels(
                    control_plane,
                    versions,
                    "gateway-saas control plane",
                    "web, worker, beat and usage consumer, selected by command",
                ),
            )
            built.append(describe(control_plane, seconds, not args.no_archive))
    report["images"] = [asdict(b) for b in built]
    report["total_seconds"] = round(time.monotonic() - started, 1)
    (OUT / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    log(f"done in {report['total_seconds']} s: {OUT.relative_to(ROOT)}/report.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
