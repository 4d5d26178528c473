"""Reports (issue 27): the agent sends its heartbeat with the oldest batch of its usage spool in
one request, the rest of a backlog alone, and a heartbeat of its own only when no report carried
one; against a control plane from before reports, each goes to its own endpoint as before."""

import json
import threading
import time
import uuid

import pytest

from gateway_agent.agent import Agent, AgentSettings
from gateway_agent.client import ReportResult
from gateway_agent.protocol import Heartbeat, RegisterRequest, RegisterResponse, ReportAnswer, UsageBatch
from gateway_agent.usage import send_pending


class FakeControlPlane:
    """Records what the agent sends; answers reports with `report_answer` (a status, or the
    parts' fates)."""

    def __init__(
        self, report_status: int = 200, refused: tuple[str, ...] = (), heartbeat: str = "stored"
    ) -> None:
        self.report_status, self.refused, self.heartbeat_fate = report_status, refused, heartbeat
        self.reports: list[tuple[Heartbeat, str]] = []
        self.usage: list[str] = []
        self.beats: list[Heartbeat] = []
        self.registered: list[RegisterRequest] = []

    def report(self, heartbeat: Heartbeat, batch_json: bytes) -> ReportResult:
        if self.report_status != 200:
            return ReportResult(self.report_status, refused_fields=self.refused)
        self.reports.append((heartbeat, json.loads(batch_json)["batch_id"]))
        return ReportResult(200, ReportAnswer(usage="accepted", heartbeat=self.heartbeat_fate))  # type: ignore[arg-type]

    def post_usage(self, batch_json: bytes) -> int:
        self.usage.append(json.loads(batch_json)["batch_id"])
        return 202

    def heartbeat(self, beat: Heartbeat) -> bool:
        self.beats.append(beat)
        return True

    def register(self, request: RegisterRequest) -> RegisterResponse:
        self.registered.append(request)
        return RegisterResponse(instance_id="i-2", cluster_id=1, heartbeat_interval_s=10)

    def close(self) -> None:
        pass


def _agent(tmp_path, control_plane: FakeControlPlane) -> Agent:
    agent = Agent(AgentSettings("http://127.0.0.1:9", "t", tmp_path / "agent"), control_plane)  # type: ignore[arg-type]
    agent.instance_id = "i-1"
    agent.applied_version = 3
    return agent


def _spool(agent: Agent, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        batch = UsageBatch(
            batch_id=uuid.uuid4().hex, instance_id="i-1", window_start=0, window_end=10, items=[]
        )
        agent.spool.append(batch)
        ids.append(batch.batch_id)
        time.sleep(0.001)  # spool names sort by creation
    return ids


def test_the_oldest_batch_goes_with_the_heartbeat_and_a_backlog_alone(tmp_path):
    control_plane = FakeControlPlane()
    agent = _agent(tmp_path, control_plane)
    ids = _spool(agent, 3)
    assert send_pending(agent.spool, agent._post_usage()) == 3
    [(beat, carried)] = control_plane.reports
    assert carried == ids[0] and beat.instance_id == "i-1" and beat.applied_version == 3
    assert control_plane.usage == ids[1:] and control_plane.beats == []
    assert agent.spool.pending() == []


def test_no_heartbeat_of_its_own_while_reports_carry_them_and_again_once_they_stop(tmp_path):
    control_plane = FakeControlPlane()
    agent = _agent(tmp_path, control_plane)
    interval = 0.4
    thread = threading.Thread(target=agent._heartbeats, args=(interval,), daemon=True)
    thread.start()
    try:
        for _ in range(8):  # a report every interval: 3.2 s
            _spool(agent, 1)
            send_pending(agent.spool, agent._post_usage())
            time.sleep(interval)
        assert len(control_plane.reports) == 8
        assert len(control_plane.beats) <= 1, control_plane.beats  # one, at most, if this machine stalled
        carried = len(control_plane.beats)
        deadline = time.monotonic() + 10
        while len(control_plane.beats) < carried + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(control_plane.beats) >= carried + 2  # no usage: heartbeats on their own again
    finally:
        agent._stop.set()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("status", "refused"),
    [(404, ()), (405, ()), (400, ("heartbeat.applied_version",))],
    ids=["404", "405", "400-heartbeat"],
)
def test_a_control_plane_without_reports_gets_each_apart(tmp_path, status, refused):
    control_plane = FakeControlPlane(report_status=status, refused=refused)
    agent = _agent(tmp_path, control_plane)
    ids = _spool(agent, 2)
    assert send_pending(agent.spool, agent._post_usage()) == 2
    assert control_plane.usage == ids and agent._reports_off_until > time.monotonic()
    later = _spool(agent, 1)
    send_pending(agent.spool, agent._post_usage())
    assert control_plane.usage == ids + later and control_plane.reports == []


def test_a_batch_refused_in_a_report_is_set_aside(tmp_path):
    control_plane = FakeControlPlane(report_status=400, refused=("usage.items.0.minute",))
    agent = _agent(tmp_path, control_plane)
    [refused, after] = _spool(agent, 2)
    assert send_pending(agent.spool, agent._post_usage()) == 1
    assert [path.name.endswith(f"{refused}.json") for path in agent.spool.rejected.iterdir()] == [True]
    assert control_plane.usage == [after] and agent._reports_off_until == 0


def test_an_instance_the_control_plane_forgot_registers_again(tmp_path):
    control_plane = FakeControlPlane(heartbeat="unknown instance")
    agent = _agent(tmp_path, control_plane)
    _spool(agent, 1)
    assert send_pending(agent.spool, agent._post_usage()) == 1
    assert [request.instance_id for request in control_plane.registered] == ["i-1"]
    assert agent.instance_id == "i-2"


def test_reports_are_tried_again_a_while_after_a_control_plane_took_none(tmp_path):
    control_plane = FakeControlPlane(report_status=404)
    agent = _agent(tmp_path, control_plane)
    _spool(agent, 1)
    send_pending(agent.spool, agent._post_usage())
    assert control_plane.reports == [] and len(control_plane.usage) == 1
    control_plane.report_status = 200  # the upgrade finished
    agent._reports_off_until = time.monotonic() - 1  # REPORTS_RETRY_S later
    [again] = _spool(agent, 1)
    send_pending(agent.spool, agent._post_usage())
    assert [carried for _, carried in control_plane.reports] == [again]


def test_a_heartbeat_the_control_plane_could_not_keep_leaves_the_heartbeats_due(tmp_path):
    control_plane = FakeControlPlane(heartbeat="not stored")
    agent = _agent(tmp_path, control_plane)
    last = agent._last_heartbeat
    _spool(agent, 1)
    assert send_pending(agent.spool, agent._post_usage()) == 1  # the batch was taken
    assert agent._last_heartbeat == last and not agent._heartbeat_carried
