"""What the agent does with a body that is not a snapshot it can serve: refuse it whole, keep
nothing, and leave the process as it found it."""

import gc
import hashlib
import json

import pytest

from gateway_agent.agent import Agent, AgentSettings, ApplyError, NothingNew
from gateway_agent.protocol import document_sha256


@pytest.fixture
def agent(tmp_path):
    agent = Agent(AgentSettings("http://127.0.0.1:9", "token", tmp_path / "agent"))
    yield agent
    agent.control_plane.close()


@pytest.mark.parametrize(
    "body",
    [
        b"<html>502 Bad Gateway</html>",  # a proxy's error page in front of the control plane
        b'{"version": 7, "sha256": "ab", "sections": {}, "document": {"rou',  # cut short
        b'{"sha256": "ab", "document": {}}',  # no version
    ],
)
def test_a_body_that_is_not_a_snapshot_is_refused_and_nothing_is_kept(agent, body):
    with pytest.raises(ApplyError, match="not a snapshot") as refused:
        agent.apply(body)

    assert refused.value.version is None  # the poll backs off instead of asking past it
    assert agent.applied_version is None
    assert not (agent.data / "last_good.json").exists()
    assert list(agent.versions.iterdir()) == []
    assert gc.isenabled()


def test_a_snapshot_the_renderer_refuses_names_its_version(agent):
    document = {"cluster_id": 1, "routes": [{"id": 1, "name": "r", "service_id": 9}]}
    sha = document_sha256(document)  # the hashes hold: the renderer is what refuses it
    body = json.dumps({"version": 7, "sha256": sha, "sections": {}, "document": document}).encode()
    with pytest.raises(ApplyError, match="version 7") as refused:
        agent.apply(body)

    assert refused.value.version == 7  # remembered, so the poll waits for the next one
    assert not (agent.data / "last_good.json").exists()
    assert list(agent.versions.iterdir()) == []
    assert gc.isenabled()


class _AnswersAtOnce:
    """A control plane whose long-poll answers at once with one body, whatever it is asked."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.polls: list[int | None] = []

    def poll_config(self, version: int | None, wait_s: float, have: int | None = None) -> bytes:
        self.polls.append(version)
        return self.body

    def close(self) -> None:
        pass


def test_a_poll_answered_at_once_with_the_version_held_is_nothing_new_not_a_change(tmp_path):
    body = b'{"version": 20, "sha256": "ab", "sections": {}, "document": {}}'
    control_plane = _AnswersAtOnce(body)
    agent = Agent(AgentSettings("http://127.0.0.1:9", "t", tmp_path / "agent"), control_plane)  # type: ignore[arg-type]
    agent.seen_version = agent.applied_version = 20

    with pytest.raises(NothingNew):
        agent.poll_once()  # the run loop backs off on it instead of polling again at once

    assert control_plane.polls == [20] and agent.applied_version == 20
    assert list(agent.versions.iterdir()) == []


def test_a_new_version_with_the_content_served_is_taken_without_rendering(agent):
    empty = hashlib.sha256(b"{}").hexdigest()  # the document {}, as the agent recomputes it
    agent.applied_version, agent.seen_version, agent.applied_sha = 20, 20, empty
    agent._running = ("/somewhere", {})  # HAProxy serves that content
    rolled_back = b'{"version": 22, "sha256": "%s", "sections": {}, "document": {}}' % empty.encode()

    agent.apply(rolled_back)

    # The version it reports (and polls with) is the new one, so the control plane sees it up to
    # date and the next poll waits; nothing was rendered or reloaded.
    assert (agent.applied_version, agent.seen_version) == (22, 22)
    assert list(agent.versions.iterdir()) == []
    assert (agent.data / "last_good.json").read_bytes() == rolled_back
