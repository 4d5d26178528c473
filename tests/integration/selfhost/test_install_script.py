"""install.sh, as far as this machine allows: a throwaway root, with the package manager,
systemctl, curl and HAProxy replaced by test doubles that record what they are asked."""

import hashlib
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from infra.selfhost import artifacts

SHELLCHECK = shutil.which("shellcheck")


def _double(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture(scope="session")
def agent_dist(tmp_path_factory):
    return tmp_path_factory.mktemp("dist")  # the wheel is built once for the whole session


@pytest.fixture
def machine(tmp_path, settings, agent_dist):
    """A fake Debian machine: /etc/os-release, and doubles on PATH logging to calls.log."""
    settings.GATEWAY_AGENT_DIST_DIR = agent_dist
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    record = f'echo "$(basename "$0") $*" >> {log}'
    _double(bin_dir, "apt-get", record)
    # The system user: unknown until useradd made it (FAKE_USER_EXISTS=1: made before).
    _double(bin_dir, "getent", f'{record}\n[ "${{FAKE_USER_EXISTS:-0}}" = 1 ]')
    _double(bin_dir, "useradd", record)
    _double(bin_dir, "chown", record)
    _double(bin_dir, "dnf", record)
    _double(
        bin_dir, "haproxy", f'{record}\necho "HAProxy version ${{FAKE_HAPROXY_VERSION:-2.6.12}} 2023/01/01"'
    )
    # curl -fsSL -o DEST URL: hands out the wheel the control plane serves.
    _double(
        bin_dir,
        "curl",
        f'{record}\nwhile [ $# -gt 0 ]; do case "$1" in -o) dest=$2; shift;; esac; shift; done\ncp "$FAKE_WHEEL" "$dest"',
    )
    # python3 -m venv PREFIX: a venv whose python records pip installs.
    _double(
        bin_dir,
        "python3",
        f'{record}\nmkdir -p "$3/bin"\nprintf \'#!/bin/sh\\necho "venv-python $*" >> {log}\\n\' > "$3/bin/python"\nchmod +x "$3/bin/python"',
    )
    # systemctl restart gateway-agent: the agent starts and registers.
    _double(
        bin_dir,
        "systemctl",
        f'{record}\nif [ "$1" = restart ]; then echo \'{{"instance_id": "x"}}\' > "$GATEWAY_INSTALL_ROOT/var/lib/gateway-agent/instance.json"; fi',
    )
    return {"root": root, "bin": bin_dir, "log": log, "tmp": tmp_path}


def _script(client_url: str = "https://cp.example.com") -> str:
    return artifacts.install_script(client_url, settings.GATEWAY_AGENT_DIST_DIR)


def _run(machine, script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    path = machine["tmp"] / "install.sh"
    path.write_text(script)
    full_env = {
        "PATH": f"{machine['bin']}:/usr/bin:/bin",
        "GATEWAY_INSTALL_ROOT": str(machine["root"]),
        "FAKE_WHEEL": str(artifacts.agent_wheel(settings.GATEWAY_AGENT_DIST_DIR)),
        "GATEWAY_WAIT_SECONDS": "3",
        **env,
    }
    return subprocess.run(["sh", str(path), *args], env=full_env, capture_output=True, text=True, timeout=60)


def test_the_served_script_is_filled_in_and_shellcheck_clean(db, machine):
    response = Client().get("/install.sh")
    assert response.status_code == 200
    script = response.content.decode()
    wheel = artifacts.agent_wheel(settings.GATEWAY_AGENT_DIST_DIR)
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() in script
    assert "__CONTROL_PLANE_URL__" not in script
    download = Client().get(f"/downloads/{wheel.name}")
    assert download.status_code == 200 and b"".join(download.streaming_content) == wheel.read_bytes()
    assert Client().get("/downloads/other.whl").status_code == 404
    if SHELLCHECK:
        path = machine["tmp"] / "served.sh"
        path.write_text(script)
        result = subprocess.run([SHELLCHECK, str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout


def test_install_on_debian_then_upgrade_then_uninstall(machine):
    result = _run(machine, _script(), GATEWAY_TOKEN="gct_1_secret")
    assert result.returncode == 0, result.stderr
    calls = machine["log"].read_text()
    assert "apt-get install -y -qq haproxy python3 python3-venv" in calls
    assert "venv-python -m pip install --quiet --upgrade" in calls and artifacts.wheel_name() in calls
    assert "systemctl enable gateway-agent" in calls and "systemctl restart gateway-agent" in calls
    env_file = machine["root"] / "etc" / "gateway-agent" / "env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert "GATEWAY_TOKEN=gct_1_secret" in env_file.read_text()
    assert "GATEWAY_CONTROL_PLANE=https://cp.example.com" in env_file.read_text()
    unit = (machine["root"] / "etc" / "systemd" / "system" / "gateway-agent.service").read_text()
    assert "ExecStart=/opt/gateway-agent/bin/gateway-agent run" in unit
    # Its own unprivileged user, owning its data folder, with only the capability for ports 80/443.
    assert "User=gateway-agent\n" in unit and "Group=gateway-agent\n" in unit
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE\n" in unit
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n" in unit
    assert "NoNewPrivileges=yes" in unit
    assert "useradd --system --user-group --home-dir /var/lib/gateway-agent" in calls
    assert f"chown -R gateway-agent:gateway-agent {machine['root']}/var/lib/gateway-agent" in calls
    assert calls.index("useradd") < calls.index("chown") < calls.index("systemctl restart")
    assert "online" in result.stderr

    # Again: an upgrade in place (the venv is reused).
    machine["log"].write_text("")
    assert _run(machine, _script(), GATEWAY_TOKEN="gct_1_secret").returncode == 0
    assert "python3 -m venv" not in machine["log"].read_text()
    machine["log"].write_text("")
    assert _run(machine, _script(), GATEWAY_TOKEN="gct_1_secret", FAKE_USER_EXISTS="1").returncode == 0
    assert "useradd" not in machine["log"].read_text()  # the user is made once

    removed = _run(machine, _script(), "--uninstall")
    assert removed.returncode == 0, removed.stderr
    assert not (machine["root"] / "etc" / "gateway-agent").exists()
    assert not (machine["root"] / "opt" / "gateway-agent").exists()


def test_rhel_family_uses_dnf(machine):
    (machine["root"] / "etc" / "os-release").write_text('ID="rocky"\nID_LIKE="rhel centos fedora"\n')
    assert _run(machine, _script(), GATEWAY_TOKEN="gct_1_x").returncode == 0
    assert "dnf install -y -q haproxy python3" in machine["log"].read_text()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"GATEWAY_TOKEN": ""}, "set GATEWAY_TOKEN"),
        ({"FAKE_HAPROXY_VERSION": "2.4.22"}, "HAProxy 2.4 is too old"),
    ],
)
def test_refusals(machine, change, message):
    result = _run(machine, _script(), **{"GATEWAY_TOKEN": "gct_1_x", **change})
    assert result.returncode != 0
    assert message in result.stderr


def test_a_tampered_download_is_refused(machine, tmp_path):
    tampered = tmp_path / "tampered.whl"
    tampered.write_bytes(artifacts.agent_wheel(settings.GATEWAY_AGENT_DIST_DIR).read_bytes() + b"x")
    result = _run(machine, _script(), GATEWAY_TOKEN="gct_1_x", FAKE_WHEEL=str(tampered))
    assert result.returncode != 0
    assert "does not match its SHA-256" in result.stderr
    assert not (machine["root"] / "etc" / "gateway-agent" / "env").exists()


def test_a_truncated_download_runs_nothing(machine):
    script = _script()
    truncated = script[: script.index("main() {") + 40]
    result = _run(machine, truncated, GATEWAY_TOKEN="gct_1_x")
    assert result.returncode != 0  # a syntax error, before anything ran
    assert not machine["log"].exists()


def test_the_served_wheel_alone_renders_and_checks_every_plugin(settings, agent_dist, tmp_path):
    """What a customer installs is the wheel, not this checkout: unpacked on its own, its
    `gateway-agent check` renders a snapshot using every plugin and HAProxy accepts it."""
    import json
    import sys
    import zipfile

    from tests.unit.test_renderer import snapshot_document

    settings.GATEWAY_AGENT_DIST_DIR = agent_dist
    site = tmp_path / "site"
    with zipfile.ZipFile(artifacts.agent_wheel(settings.GATEWAY_AGENT_DIST_DIR)) as wheel:
        wheel.extractall(site)
    plugins = {
        "ip-restriction": {"allowlist": ["10.0.0.0/8"]},
        "cors": {"allow_origins": ["*"]},
        "request-size-limit": {"max_body_bytes": 1000},
        "jwt-auth": {},
        "limit-req": {"rate": 10, "burst": 5},
        "traffic-split": {"weighted_upstreams": [{"upstream": "secure", "weight": 10}]},
        "response-rewrite": {"headers": {"set": {"X-A": "b"}}},
        "mocking": {"body": "{}"},
    }
    document = snapshot_document()
    document["routes"][1]["plugins"] = [{"name": name, "config": config} for name, config in plugins.items()]
    document["routes"][0]["plugins"] += [
        {"name": "hmac-auth", "config": {}},
        {"name": "basic-auth", "config": {}},
    ]
    document["consumers"][0]["credentials"] += [
        {"type": "hmac-auth", "id": 2, "key_id": "app-hmac", "secret": "an-hmac-secret-of-at-least-32-chars"},
        {"type": "basic-auth", "id": 3, "username": "app", "password_crypt": "$6$rounds=5000$salt$hash"},
    ]
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(document))
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    result = subprocess.run(
        [sys.executable, "-m", "gateway_agent", "check", str(snapshot), "--haproxy-bin", haproxy],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        str(site)
        in subprocess.run(
            [sys.executable, "-c", "import gateway_agent.plugins.jwt_auth as m; print(m.__file__)"],
            cwd=tmp_path,
            env={"PYTHONPATH": str(site)},
            capture_output=True,
            text=True,
        ).stdout
    )


def test_the_helm_command_installs_the_chart_the_control_plane_serves(db, settings):
    """The install page's Helm command names a chart archive this control plane serves: the
    gateway chart packaged as `helm package` lays it out, the same bytes each time."""
    import io
    import tarfile

    from tests.factories import client_for, make_org_with_cluster

    settings.PUBLIC_URL = "https://cp.example.com"
    org, author, cluster = make_org_with_cluster()
    answer = client_for(author.actor.user).get(f"/api/v1/orgs/{org.slug}/clusters/{cluster.id}/install/")
    assert answer.status_code == 200, answer.content
    helm = answer.json()["helm"]
    url = f"https://cp.example.com/downloads/{artifacts.chart_name()}"
    assert helm.startswith(f"helm install gateway {url} ")
    assert "--set controlPlane.url=https://cp.example.com --set token.value=<cluster token>" in helm

    download = Client().get(f"/downloads/{artifacts.chart_name()}")
    assert download.status_code == 200 and download["Content-Type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(download.content)) as chart:
        names = set(chart.getnames())
    assert {"gateway/Chart.yaml", "gateway/values.yaml", "gateway/values.schema.json"} <= names
    assert any(name.startswith("gateway/templates/") for name in names)
    assert Client().get(f"/downloads/{artifacts.chart_name()}").content == download.content


def test_a_plain_http_control_plane_is_refused_unless_allowed(machine):
    script = _script("http://cp.example.com")
    refused = _run(machine, script, GATEWAY_TOKEN="gct_1_x")
    assert refused.returncode != 0
    assert "plain http" in refused.stderr and "GATEWAY_INSECURE_HTTP=1" in refused.stderr
    assert not machine["log"].exists()  # before anything ran

    allowed = _run(machine, script, GATEWAY_TOKEN="gct_1_x", GATEWAY_INSECURE_HTTP="1")
    assert allowed.returncode == 0, allowed.stderr
    env_file = (machine["root"] / "etc" / "gateway-agent" / "env").read_text()
    assert "GATEWAY_INSECURE_HTTP=1" in env_file


def test_a_loopback_control_plane_needs_no_permission(machine):
    result = _run(machine, _script("http://127.0.0.1:8000"), GATEWAY_TOKEN="gct_1_x")
    assert result.returncode == 0, result.stderr
    assert "GATEWAY_INSECURE_HTTP=0" in (machine["root"] / "etc" / "gateway-agent" / "env").read_text()


def test_the_docker_command_runs_the_gateway_image_make_images_builds(db, settings):
    """The install page's `docker run` line names this release's gateway image (images/versions.env),
    with the data volume the image declares."""
    from infra.images import gateway_image
    from tests.factories import client_for, make_org_with_cluster

    settings.PUBLIC_URL = "https://cp.example.com"
    org, author, cluster = make_org_with_cluster()
    answer = client_for(author.actor.user).get(f"/api/v1/orgs/{org.slug}/clusters/{cluster.id}/install/")
    assert answer.status_code == 200, answer.content
    docker = answer.json()["docker"]
    assert docker.endswith(f" -v gateway-data:/var/lib/gateway-agent {gateway_image().reference}")
    assert "-e GATEWAY_CONTROL_PLANE=https://cp.example.com -e GATEWAY_TOKEN=<cluster token>" in docker
