"""What the agent does with a body that is not a snapshot it can serve: refuse it whole, keep
nothing, and leave the process as it found it."""

import gc

import pytest

from gateway_agent.agent import Agent, AgentSettings, ApplyError


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
    body = (
        b'{"version": 7, "sha256": "ab", "sections": {},'
        b' "document": {"cluster_id": 1, "routes": [{"id": 1, "name": "r", "service_id": 9}]}}'
    )
    with pytest.raises(ApplyError, match="version 7") as refused:
        agent.apply(body)

    assert refused.value.version == 7  # remembered, so the poll waits for the next one
    assert not (agent.data / "last_good.json").exists()
    assert list(agent.versions.iterdir()) == []
    assert gc.isenabled()
