"""The images' names and tags come from one place, images/versions.env: `make images` tags what
it builds with them (images/build.py), and the Helm charts' defaults, the AWS deploy's manifests
and the install page's `docker run` line name the same images."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

import gateway_agent
from infra.images import VERSIONS_FILE, control_plane_image, gateway_image, read_versions
from infra.kubernetes.gateway import gateway_manifests

ROOT = Path(__file__).resolve().parents[2]


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _chart_default_image(chart: str) -> str:
    values, meta = _yaml(ROOT / "helm" / chart / "values.yaml"), _yaml(ROOT / "helm" / chart / "Chart.yaml")
    return f"{values['image']['repository']}:{values['image']['tag'] or meta['appVersion']}"


def test_the_versions_file_names_both_images_with_the_versions_of_what_they_hold() -> None:
    versions = read_versions()
    assert set(versions) >= {"GATEWAY_IMAGE", "GATEWAY_TAG", "CONTROL_PLANE_IMAGE", "CONTROL_PLANE_TAG"}
    agent = tomllib.loads((ROOT / "gateway_agent" / "pyproject.toml").read_text())["project"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert versions["GATEWAY_TAG"] == agent["version"] == gateway_agent.__version__
    assert versions["CONTROL_PLANE_TAG"] == project["version"]
    assert gateway_image().reference == f"{versions['GATEWAY_IMAGE']}:{versions['GATEWAY_TAG']}"
    assert (
        control_plane_image().reference
        == f"{versions['CONTROL_PLANE_IMAGE']}:{versions['CONTROL_PLANE_TAG']}"
    )


def test_make_images_builds_the_images_the_versions_file_names() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^images:.*\n\t\$\(PY\) images/build\.py", makefile, flags=re.MULTILINE)
    build = (ROOT / "images" / "build.py").read_text()
    assert "read_versions()" in build
    assert 'Image(versions["GATEWAY_IMAGE"], versions["GATEWAY_TAG"])' in build
    assert 'Image(versions["CONTROL_PLANE_IMAGE"], versions["CONTROL_PLANE_TAG"])' in build
    assert VERSIONS_FILE == ROOT / "images" / "versions.env"


def test_the_helm_charts_default_to_the_images_make_images_builds() -> None:
    assert _chart_default_image("gateway") == gateway_image().reference
    assert _chart_default_image("saas") == control_plane_image().reference


def test_the_aws_deploy_and_the_install_page_run_the_gateway_image_make_images_builds(monkeypatch) -> None:
    # The setting's default (SAAS_GATEWAY_IMAGE unset), as the settings module computes it.
    monkeypatch.delenv("SAAS_GATEWAY_IMAGE", raising=False)
    import importlib

    import saas.settings.aws as aws

    assert gateway_image().reference == importlib.reload(aws).SAAS_GATEWAY_IMAGE
    assert gateway_image().reference == settings.SAAS_GATEWAY_IMAGE
    # The AWS deploy's Deployment runs it.
    from saas.deployments.desired_state import gateway_spec
    from saas.deployments.models import GatewayDeployment

    deployment = GatewayDeployment(namespace="gateway-cloud", replicas=2, max_replicas=6, upstream_cidrs=[])
    containers = [
        container
        for manifest in gateway_manifests(gateway_spec(deployment))
        if manifest["kind"] == "Deployment"
        for container in manifest["spec"]["template"]["spec"]["containers"]
    ]
    assert [c["image"] for c in containers] == [gateway_image().reference]
    # The install page's `docker run` line names the same image.
    views = (ROOT / "saas" / "gateways" / "api" / "views.py").read_text()
    assert "gateway-data:/var/lib/gateway-agent {settings.SAAS_GATEWAY_IMAGE}" in views


def test_the_charts_run_the_images_as_the_user_the_images_declare() -> None:
    for chart, containerfile in (("gateway", "gateway"), ("saas", "control-plane")):
        text = (ROOT / "images" / containerfile / "Containerfile").read_text()
        created = re.search(r"useradd .*--uid (\d+)", text)
        declared = re.search(r"^USER (\d+)$", text, flags=re.MULTILINE)
        assert created and declared and created.group(1) == declared.group(1), containerfile
        values = _yaml(ROOT / "helm" / chart / "values.yaml")
        assert values["securityContext"]["runAsUser"] == int(declared.group(1)), chart
