"""The agent trusts nothing it is sent (issue 22): a served snapshot whose version, hashes or
content do not hold is refused before anything is written or deleted; nothing outside the data
folder changes, the last good snapshot stays on disk and serving, and the refusal is the
instance's last error."""

import copy
import hashlib
import json
from pathlib import Path

import pytest

from gateway_agent import cli
from gateway_agent.agent import Agent, AgentSettings, ApplyError, write_files
from gateway_agent.client import ControlPlane, check_control_plane_url
from gateway_agent.protocol import Heartbeat, canonical_json, document_sha256
from tests.unit.test_renderer import snapshot_document


def served(version: int, document: dict, **override: object) -> dict:
    """A served snapshot as the control plane sends it, every hash right."""
    sections = {name: hashlib.sha256(canonical_json(value)).hexdigest() for name, value in document.items()}
    sha = document_sha256(document)
    return {
        "version": version,
        "sha256": sha,
        "served_sha256": sha,
        "sections": sections,
        "document": document,
    }


def body_of(answer: dict) -> bytes:
    return json.dumps(answer).encode()


class FakeControlPlane:
    """Answers each long-poll with the next body; records heartbeats."""

    def __init__(self, *bodies: bytes) -> None:
        self.bodies = list(bodies)
        self.beats: list[Heartbeat] = []

    def poll_config(self, version: int | None, wait_s: float, have: int | None = None) -> bytes:
        return self.bodies.pop(0)

    def heartbeat(self, beat: Heartbeat) -> bool:
        self.beats.append(beat)
        return True

    def close(self) -> None:
        pass


def _tree(folder: Path) -> dict[str, bytes | str]:
    """Every file (content) and link (target) under `folder`."""
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[str(path)] = "-> " + str(path.readlink())
        elif path.is_file():
            found[str(path)] = path.read_bytes()
    return found


@pytest.fixture
def serving(tmp_path, monkeypatch):
    """An agent serving version 1 of the test document, with files outside its data folder.

    HAProxy is left out: a reload only points `current` at the folder and notes what serves."""
    outside = tmp_path / "a"
    data = outside / "b" / "agent"  # "/../../../.." from versions/v2- lands on tmp_path/a
    data.mkdir(parents=True)
    (outside / "precious.txt").write_text("keep me")
    (outside / "b" / "precious.txt").write_text("keep me too")
    control_plane = FakeControlPlane()
    agent = Agent(AgentSettings("http://127.0.0.1:9", "t", data), control_plane)  # type: ignore[arg-type]
    agent.instance_id = "i-1"

    def reload(files: dict[str, str], folder: Path) -> None:
        agent._point_current_to(folder)
        agent._running = (str(folder), files)

    monkeypatch.setattr(agent, "_apply_by_reload", reload)
    document = snapshot_document()
    agent.apply(body_of(served(1, document)))
    assert agent.applied_version == 1 and agent.current.is_symlink()
    agent.document = document  # type: ignore[attr-defined]
    yield agent
    agent.control_plane.close()


def _traversal(document: dict) -> dict:
    return served(2, document) | {"sha256": "/../../../.." + "0" * 52}


def _document_hash_wrong(document: dict) -> dict:
    changed = copy.deepcopy(document)
    changed["routes"][0]["priority"] = 7
    answer = served(2, changed)
    return answer | {"sha256": served(1, document)["sha256"], "served_sha256": served(1, document)["sha256"]}


def _section_hash_old(document: dict) -> dict:
    """The routes changed (and are invalid), but their section hash is the old routes' one."""
    changed = copy.deepcopy(document)
    changed["routes"][0]["paths"] = "not a list"
    answer = served(2, changed)
    answer["sections"]["routes"] = served(1, document)["sections"]["routes"]
    return answer


def _huge_float_version(document: dict) -> bytes:
    return body_of(served(2, document)).replace(b'"version": 2', b'"version": 1e400', 1)


def _huge_float_inside(document: dict) -> bytes:
    answer = served(2, document)
    body = body_of(answer)
    assert b'"priority": 0' in body
    return body.replace(b'"priority": 0', b'"priority": 1e400', 1)


REFUSED = {
    "traversal in sha256": (lambda d: body_of(_traversal(d)), "sha256 is not 64 lowercase hex digits", 2),
    "sha256 upper case": (
        lambda d: body_of(served(2, d) | {"sha256": "A" * 64, "served_sha256": "A" * 64}),
        "not 64 lowercase hex",
        2,
    ),
    "document hash does not match": (
        lambda d: body_of(_document_hash_wrong(d)),
        "document does not match",
        2,
    ),
    "one section hash does not match": (
        lambda d: body_of(_section_hash_old(d)),
        "section 'routes' does not match",
        2,
    ),
    "section hash not hex": (
        lambda d: body_of(served(2, d) | {"sections": dict.fromkeys(d, "../x")}),
        "does not match",
        2,
    ),
    "sections not the document's": (
        lambda d: body_of(served(2, d) | {"sections": {"routes": "0" * 64}}),
        "sections named are not the document's",
        2,
    ),
    "version 1e400": (_huge_float_version, "number out of range: 1e400", None),
    "version 2^63": (lambda d: body_of(served(2**63, d)), "version must be an integer", None),
    "version 2^53": (lambda d: body_of(served(2**53, d)), "version must be an integer", None),
    "version 0": (lambda d: body_of(served(0, d)), "version must be an integer", None),
    "version true": (lambda d: body_of(served(2, d) | {"version": True}), "version must be an integer", None),
    "version as a string": (
        lambda d: body_of(served(2, d) | {"version": "2"}),
        "version must be an integer",
        None,
    ),
    "1e400 in the document": (_huge_float_inside, "not a snapshot", None),
    "NaN in the document": (
        lambda d: body_of(served(2, d)).replace(b'"priority": 0', b'"priority": NaN', 1),
        "not a snapshot",
        None,
    ),
    "truncated": (lambda d: body_of(served(2, d))[:-40], "not a snapshot", None),
    "cut to nothing": (lambda d: b"", "not a snapshot", None),
    "deeply nested": (lambda d: b"[" * 100_000, "not a snapshot", None),
    "not an object": (lambda d: b"[1, 2]", "not a snapshot", None),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_snapshot_that_does_not_hold_is_refused_reported_and_changes_nothing(serving, tmp_path, case):
    make, message, version = REFUSED[case]
    body = make(serving.document)
    before = _tree(tmp_path)
    serving_before = (
        serving.applied_version,
        serving.applied_sha,
        serving._running,
        serving.current.resolve(),
    )
    serving.control_plane.bodies.append(body)

    if version is None:
        with pytest.raises(ApplyError, match=message):  # not a snapshot: the loop backs off
            serving.poll_once()
    else:
        assert serving.poll_once() is True

    assert _tree(tmp_path) == before  # outside the data folder, inside it, last_good.json: all as they were
    assert (tmp_path / "a" / "precious.txt").read_text() == "keep me"
    assert (serving.applied_version, serving.applied_sha, serving._running, serving.current.resolve()) == (
        serving_before
    )
    assert message in (serving.last_error or "")
    assert serving.control_plane.beats[-1].last_error == serving.last_error  # reported at once
    assert serving.control_plane.beats[-1].applied_version == 1
    if version is not None:
        assert serving.seen_version == version  # the poll waits for the next one


def test_the_last_good_snapshot_on_disk_is_checked_too(serving, tmp_path):
    last_good = serving.data / "last_good.json"
    last_good.write_bytes(body_of(_section_hash_old(serving.document)))
    serving._running = None
    before = _tree(tmp_path)

    with pytest.raises(ApplyError, match="does not match"):
        serving.apply(last_good.read_bytes(), keep=False)

    assert _tree(tmp_path) == before


def test_a_good_snapshot_after_refusals_applies_and_clears_the_error(serving):
    changed = copy.deepcopy(serving.document)
    changed["routes"][0]["priority"] = 7
    serving.control_plane.bodies += [
        body_of(_section_hash_old(serving.document)),
        body_of(served(3, changed)),
    ]
    serving.poll_once()
    assert serving.last_error

    serving.poll_once()

    assert serving.applied_version == 3 and serving.last_error is None
    assert json.loads((serving.data / "last_good.json").read_bytes())["version"] == 3
    assert serving.applied_sha == document_sha256(changed)


def test_the_same_content_under_a_new_version_is_still_taken_without_rendering(serving):
    folders = sorted(serving.versions.iterdir())
    serving.apply(body_of(served(5, copy.deepcopy(serving.document))))
    assert serving.applied_version == 5
    assert sorted(serving.versions.iterdir()) == folders  # nothing rendered


def test_the_same_content_shortcut_checks_the_content_not_the_hash_it_is_told(serving):
    """A body naming the serving hash over other content is refused, not taken as unchanged."""
    changed = copy.deepcopy(serving.document)
    changed["routes"][0]["paths"] = "not a list"
    answer = served(6, changed) | {"sha256": serving.applied_sha, "served_sha256": serving.applied_sha}
    with pytest.raises(ApplyError, match="does not match"):
        serving.apply(body_of(answer))
    assert serving.applied_version == 1


def test_secrets_served_decrypted_are_checked_against_the_served_hashes(serving):
    """The control plane hashes the stored document (secrets as ciphertext) for `sha256`, and
    what the agent receives (secrets usable) for `served_sha256` and the sections."""
    decrypted = copy.deepcopy(serving.document)
    answer = served(7, decrypted) | {"sha256": "c" * 64}  # the stored form's hash: not checkable
    serving.apply(body_of(answer))
    assert serving.applied_version == 7
    assert serving.applied_sha == document_sha256(decrypted)


def test_write_files_stays_inside_its_folder(tmp_path):
    with pytest.raises(ValueError, match="outside"):
        write_files({"../escaped.txt": "x"}, tmp_path / "folder")
    assert not (tmp_path / "escaped.txt").exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "http://127.3.4.5",
        "http://[::1]:8000",
        "http://localhost:8000",
        "https://cp.example.com",
    ],
)
def test_https_or_loopback_is_accepted(url):
    check_control_plane_url(url)


@pytest.mark.parametrize("url", ["http://cp.example.com", "http://10.0.0.1:8000", "http://0.0.0.0:8000"])
def test_plain_http_off_loopback_is_refused_unless_allowed(url):
    with pytest.raises(ValueError, match="--insecure-http"):
        check_control_plane_url(url)
    with pytest.raises(ValueError, match="plain-http"):
        ControlPlane(url, "t")
    check_control_plane_url(url, insecure_http=True)
    ControlPlane(url, "t", insecure_http=True).close()


@pytest.mark.parametrize("url", ["ftp://cp.example.com", "cp.example.com", "https://"])
def test_a_control_plane_url_that_is_not_http_is_refused(url):
    with pytest.raises(ValueError, match="must be https"):
        check_control_plane_url(url, insecure_http=True)


def test_the_cli_refuses_plain_http_at_start_with_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GATEWAY_INSECURE_HTTP", raising=False)
    started = []
    monkeypatch.setattr(cli, "Agent", lambda *a, **k: started.append(a))
    argv = ["run", "--control-plane", "http://cp.example.com", "--token", "t", "--data-dir", str(tmp_path)]
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2 and not started
    assert "refusing the plain-http control plane http://cp.example.com" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["flag", "env"])
def test_the_cli_takes_plain_http_when_told(tmp_path, monkeypatch, how):
    monkeypatch.delenv("GATEWAY_INSECURE_HTTP", raising=False)
    argv = ["run", "--control-plane", "http://cp.example.com", "--token", "t", "--data-dir", str(tmp_path)]
    if how == "flag":
        argv.append("--insecure-http")
    else:
        monkeypatch.setenv("GATEWAY_INSECURE_HTTP", "1")
    settings = []

    class Started(Exception):
        pass

    def agent(agent_settings: AgentSettings) -> None:
        settings.append(agent_settings)
        raise Started

    monkeypatch.setattr(cli, "Agent", agent)
    with pytest.raises(Started):
        cli.main(argv)
    assert settings[0].insecure_http is True
