"""Reports (issue 27): a gateway's heartbeat and its oldest usage batch in one request, where two
took a fleet's requests. The batch is taken exactly as /agent/v1/usage takes it, and the
heartbeat as /agent/v1/heartbeat does; the answer says what became of each."""

import pytest

from saas.metering.intake_queue import UsageConsumer
from tenants.roles import Role
from tests.agent_api import call_agent_api, registered_instance

from .usage import NOW, batch, billed, queued, this_minute, token

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.time_machine(NOW, tick=True),
]


def _report(secret: str, body: object, method: str = "POST"):
    return call_agent_api(method, "/agent/v1/report", secret, body)


def _status(cw) -> dict:
    [status] = cw.client(Role.VIEWER).get(cw.url("instances/")).json()["results"]
    return status


def test_a_report_brings_the_gateways_status_and_its_usage_counted_once(cw):
    secret = token(cw)
    instance_id = registered_instance(secret)
    usage = batch((this_minute(), 1, "app", "2xx", 7))
    report = {"heartbeat": {"instance_id": instance_id, "applied_version": 4}, "usage": usage}
    answer = _report(secret, report)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"usage": "accepted", "heartbeat": "stored"}
    status = _status(cw)
    assert status["status"] == "online" and status["applied_version"] == 4
    assert queued() == 1
    # The same report again (its answer was lost on the way): taken, and counted once.
    assert _report(secret, report).json() == {"usage": "accepted", "heartbeat": "stored"}
    assert UsageConsumer("reports").drain() == 2
    assert billed(cw, NOW.strftime("%Y-%m")) == 7


def test_a_report_without_usage_is_a_heartbeat(cw):
    secret = token(cw)
    instance_id = registered_instance(secret)
    beat = {"instance_id": instance_id, "applied_version": 2, "last_error": "haproxy -c: parse error"}
    answer = _report(secret, {"heartbeat": beat})
    assert answer.json() == {"usage": None, "heartbeat": "stored"}
    assert _status(cw)["last_error"] == "haproxy -c: parse error"
    assert queued() == 0


def test_an_unknown_instance_still_has_its_usage_counted_and_is_told_toregistered_instance(cw):
    secret = token(cw)
    answer = _report(
        secret, {"heartbeat": {"instance_id": "forgotten"}, "usage": batch((this_minute(), 1, "", "2xx", 3))}
    )
    assert answer.status_code == 200
    assert answer.json() == {"usage": "accepted", "heartbeat": "unknown instance"}
    assert UsageConsumer("reports").drain() == 1
    assert billed(cw, NOW.strftime("%Y-%m")) == 3


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r["usage"]["items"][0].update(minute=this_minute() + 600), "usage.items.0.minute"),
        (lambda r: r["usage"]["items"][0].update(consumer="app\x00"), "usage.items.0.consumer"),
        (lambda r: r["usage"].update(batch_id="not hex"), "usage.batch_id"),
        (lambda r: r["heartbeat"].update(applied_version=-1), "heartbeat.applied_version"),
        (lambda r: r.update(extra=1), "extra"),
    ],
    ids=["usage-in-the-future", "usage-nul", "usage-batch-id", "heartbeat-version", "unknown-field"],
)
def test_a_report_refused_names_the_field_and_keeps_nothing(cw, change, field):
    secret = token(cw)
    instance_id = registered_instance(secret)
    report = {
        "heartbeat": {"instance_id": instance_id, "applied_version": 1},
        "usage": batch((this_minute(), 1, "app", "2xx", 5)),
    }
    change(report)
    answer = _report(secret, report)
    assert answer.status_code == 400, answer.text
    assert field in answer.json()["errors"], answer.json()
    assert queued() == 0
    assert _status(cw)["status"] != "online"  # its heartbeat not stored either


def test_reports_want_a_token_and_a_post(cw):
    body = {"heartbeat": {"instance_id": "x"}}
    assert _report("gct_0_nope", body).status_code == 401
    answer = _report(token(cw), body, method="GET")
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"
    assert _report(token(cw), b"x" * (5 * 1024 * 1024)).status_code == 413
