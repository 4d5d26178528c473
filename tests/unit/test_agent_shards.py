"""An agent takes the consumers section in shards (issue 27): a change of one consumer sends one
shard, the agent validates that shard alone, keeps the others on disk, and serves what the whole
document would have rendered to."""

import hashlib
import json
from pathlib import Path

import pytest

from gateway_agent import cli
from gateway_agent.agent import Agent, AgentSettings, ApplyError
from gateway_agent.protocol import canonical_json, document_sha256
from gateway_agent.runtime_update import rebase
from tests.unit.test_agent_untrusted import FakeControlPlane, body_of, served
from tests.unit.test_renderer import HAPROXY, snapshot_document

RESTRICTED_ROUTE = {
    "id": 9,
    "name": "gold only",
    "service_id": 1,
    "paths": [{"type": "prefix", "value": "/gold"}],
    "plugins": [
        {"name": "key-auth", "config": {}},
        {"name": "consumer-restriction", "config": {"labels": {"tier": "gold"}}},
    ],
}


def consumer(consumer_id: int, *, key: str, tier: str = "free", **extra: object) -> dict:
    return {
        "id": consumer_id,
        "username": f"c{consumer_id}",
        "labels": {"tier": tier},
        "credentials": [{"type": "key-auth", "id": consumer_id, "key_sha256": key * 32}],
        **extra,
    }


def many_consumers() -> dict:
    """Consumers in three shards (ids 0-999, 1000-1999, 2000-2999), with the credentials and
    settings that reach the configuration: jwt-auth, basic-auth, labels, a consumer's own limit."""
    return snapshot_document(
        routes=[*snapshot_document()["routes"], RESTRICTED_ROUTE],
        consumers=[
            consumer(1, key="ab", tier="gold"),
            consumer(
                2,
                key="cd",
                plugins=[{"name": "limit-count", "config": {"count": 5, "time_window": 60}}],
            ),
            {
                "id": 1500,
                "username": "basic",
                "credentials": [
                    {"type": "basic-auth", "id": 3, "username": "ann", "password_crypt": "$6$salt$hash"},
                    {
                        "type": "jwt-auth",
                        "id": 4,
                        "key": "ann-key",
                        "algorithm": "HS256",
                        "secret": "a-secret-of-at-least-32-characters",
                    },
                ],
            },
            consumer(2001, key="ef", tier="gold"),
            consumer(2002, key="12", enabled=False),
        ],
    )


def sharded(
    version: int, document: dict, *, leave_out: set[int] = frozenset(), base: int | None = None
) -> dict:
    """The body a control plane sends to `shards=1`, shards in `leave_out` left out."""
    pieces: dict[int, list] = {}
    for entity in document["consumers"]:
        pieces.setdefault(entity["id"] // 1000, []).append(entity)
    texts = {index: canonical_json(entities).decode() for index, entities in pieces.items()}
    sections = {name: hashlib.sha256(canonical_json(value)).hexdigest() for name, value in document.items()}
    body = {
        "version": version,
        "sha256": document_sha256(document),
        "served_sha256": document_sha256(document),
        "sections": sections,
        "shards": {"consumers": {str(i): hashlib.sha256(t.encode()).hexdigest() for i, t in texts.items()}},
        "shard_texts": {"consumers": {str(i): t for i, t in texts.items() if i not in leave_out}},
        "document": {name: value for name, value in document.items() if name != "consumers"},
    }
    return body | ({"base_version": base} if base is not None else {})


def new_agent(data: Path, monkeypatch: pytest.MonkeyPatch, *bodies: bytes) -> Agent:
    """An agent without HAProxy: a reload only points `current` at the folder."""
    agent = Agent(AgentSettings("http://127.0.0.1:9", "t", data), FakeControlPlane(*bodies))  # type: ignore[arg-type]
    agent.instance_id = "i-1"

    def reload(files: dict[str, str], folder: Path) -> None:
        agent._point_current_to(folder)
        agent._running = (str(folder), files)

    monkeypatch.setattr(agent, "_apply_by_reload", reload)
    return agent


def serving(agent: Agent) -> dict[str, str]:
    assert agent._running is not None
    files = rebase(agent._running[1], agent._running[0], "/config")
    return rebase(files, str(agent.data), "/data")  # the runtime socket's path


def test_shards_serve_what_the_whole_document_serves(tmp_path, monkeypatch):
    document = many_consumers()
    whole = new_agent(tmp_path / "whole", monkeypatch)
    whole.apply(body_of(served(1, document)))
    in_shards = new_agent(tmp_path / "shards", monkeypatch)
    in_shards.apply(body_of(sharded(1, document)))

    assert serving(in_shards) == serving(whole)
    assert in_shards.applied_sha == whole.applied_sha  # one content, one hash, either form
    files = serving(in_shards)
    assert files["acl/cr_g0.lst"] == "c1\nc2001\n"
    assert "c2002" not in files["maps/keys.map"]  # suspended: none of its keys
    assert "user 'ann' password" in files["haproxy.cfg"]
    assert len(list((tmp_path / "shards" / "shards").iterdir())) == 3
    assert in_shards.held_version == 1 and whole.held_version is None


def test_a_consumer_change_sends_its_shard_alone_and_a_restart_serves_from_the_shards_held(
    tmp_path, monkeypatch
):
    document = many_consumers()
    agent = new_agent(tmp_path / "agent", monkeypatch)
    agent.apply(body_of(sharded(1, document)))
    held_before = {path.name for path in (tmp_path / "agent" / "shards").iterdir()}

    document["consumers"][2]["credentials"][0]["username"] = "bea"  # consumer 1500, shard 1
    change = sharded(2, document, leave_out={0, 2}, base=1)
    assert list(change["shard_texts"]["consumers"]) == ["1"]
    agent.apply(body_of(change))

    files = serving(agent)
    assert "user 'bea' password" in files["haproxy.cfg"] and "'ann'" not in files["haproxy.cfg"]
    assert files == serving(whole_agent(tmp_path, monkeypatch, document))
    held_after = {path.name for path in (tmp_path / "agent" / "shards").iterdir()}
    assert len(held_after) == 3 and len(held_before & held_after) == 2  # the old shard 1 is gone

    restarted = new_agent(tmp_path / "agent", monkeypatch)
    restarted.serve_last_good()  # last_good.json names shards 0 and 2 without their content
    assert restarted.applied_version == 2 and serving(restarted) == files


def whole_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, document: dict) -> Agent:
    agent = new_agent(tmp_path / "reference", monkeypatch)
    agent.apply(body_of(served(1, document)))
    return agent


def test_an_agent_missing_a_shard_left_out_asks_for_every_shard(tmp_path, monkeypatch):
    document = many_consumers()
    agent = new_agent(tmp_path / "agent", monkeypatch)
    agent.apply(body_of(sharded(1, document)))
    for path in (tmp_path / "agent" / "shards").iterdir():
        path.write_text("[]")  # damaged on disk
    agent.shards._sets.clear()
    document["consumers"][0]["labels"] = {"tier": "free"}
    polls: list[int | None] = []
    control_plane = FakeControlPlane(
        body_of(sharded(2, document, leave_out={1, 2}, base=1)), body_of(sharded(2, document))
    )
    control_plane.poll_config = lambda version, wait_s, have=None: (
        polls.append(have) or control_plane.bodies.pop(0)
    )  # type: ignore[method-assign]
    agent.control_plane = control_plane  # type: ignore[assignment]

    assert agent.poll_once() and agent.applied_version == 1  # not applied: shards missing
    assert agent.poll_once() and agent.applied_version == 2
    assert polls == [1, None]  # then asked for every shard
    assert serving(agent)["acl/cr_g0.lst"] == "c2001\n"
    # The damaged copies were replaced: the next change needs only its own shard.
    assert agent.held_version == 2 and b"[]" not in {p.read_bytes() for p in agent.shards.folder.iterdir()}


def test_a_shard_that_does_not_match_its_hash_is_refused_and_nothing_is_kept(tmp_path, monkeypatch):
    document = many_consumers()
    agent = new_agent(tmp_path / "agent", monkeypatch)
    agent.apply(body_of(sharded(1, document)))
    last_good = (tmp_path / "agent" / "last_good.json").read_bytes()

    tampered = sharded(2, document, leave_out={0, 2}, base=1)
    text = tampered["shard_texts"]["consumers"]["1"]
    tampered["shard_texts"]["consumers"]["1"] = text.replace('"ann"', '"eve"')
    with pytest.raises(ApplyError, match="shard consumers/1 does not match its sha256") as refused:
        agent.apply(body_of(tampered))

    assert refused.value.version == 2 and not refused.value.shards_missing
    assert agent.applied_version == 1
    assert (tmp_path / "agent" / "last_good.json").read_bytes() == last_good
    assert json.loads(last_good)["version"] == 1


def test_gateway_agent_check_takes_the_last_good_snapshot_with_its_shards(tmp_path, monkeypatch, capsys):
    document = many_consumers()
    agent = new_agent(tmp_path / "agent", monkeypatch)
    agent.apply(body_of(sharded(1, document)))
    document["consumers"][0]["labels"] = {"tier": "free"}
    agent.apply(body_of(sharded(2, document, leave_out={1, 2}, base=1)))

    last_good = str(tmp_path / "agent" / "last_good.json")
    assert cli.main(["check", last_good, "--haproxy-bin", HAPROXY]) == 0
    for path in (tmp_path / "agent" / "shards").iterdir():
        path.unlink()
    assert cli.main(["check", last_good, "--haproxy-bin", HAPROXY]) == 1
    assert "was not sent and is not held" in capsys.readouterr().err
