"""What operators see of metering: `manage.py usage_dead_letters` (list, replay, purge) and the
Prometheus endpoint `/metrics` with the queue's and dead letters' gauges."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from core import metrics
from saas.metering.intake_queue import UsageConsumer
from saas.metering.models import UsageDeadLetter, UsageIntake

from .usage import NOW, batch, billed, post, queued, this_minute, token

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.time_machine(NOW, tick=True),
]


def _command(*args: str) -> str:
    out = StringIO()
    call_command("usage_dead_letters", *args, stdout=out, stderr=out)
    return out.getvalue()


def _dead_letters(cw) -> dict[str, int]:
    """Three dead letters: two batches of organization A's whose organization was not found (its
    schema named wrong) and one that is not JSON, in B. Their ids by what they are."""
    a_schema, b_schema = cw.world.a.org.schema_name, cw.world.b.org.schema_name
    first = batch((this_minute(), 1, "app", "2xx", 5))
    second = batch((this_minute(), 2, "app", "2xx", 6))
    for body in (first, second):
        UsageIntake.objects.create(
            schema_name=a_schema + "_x", cluster_id=cw.cluster_id, batch=json.dumps(body)
        )
    UsageIntake.objects.create(schema_name=b_schema, cluster_id=cw.other_cluster_id, batch="{")
    assert UsageConsumer("c").drain() == 3
    letters = list(UsageDeadLetter.objects.order_by("id"))
    assert len(letters) == 3
    # What the operator fixes: the schema the batches name (say, an organization restored).
    return {"first": letters[0].id, "second": letters[1].id, "broken": letters[2].id}


def test_dead_letters_are_listed_replayed_once_and_purged(cw):
    assert _command("list") == "No dead letters.\n"
    ids = _dead_letters(cw)
    a_schema, b_schema = cw.world.a.org.schema_name, cw.world.b.org.schema_name
    listing = _command("list")
    assert listing.startswith("3 dead letters, the oldest from ")
    assert f"    2  {a_schema}_x  " in listing and "no longer exists" in listing
    assert f"    1  {b_schema}  " in listing and "Not a usage batch" in listing
    assert f"{ids['broken']}  {b_schema}  {cw.other_cluster_id}  ?  " in listing
    assert _command("list", "--limit", "1").rstrip().endswith("... and 2 more (--limit).")

    # Fixed (the rows now name the organization's schema), replayed one by one: counted once.
    UsageDeadLetter.objects.filter(id__in=[ids["first"], ids["second"]]).update(schema_name=a_schema)
    assert _command("replay", "--id", str(ids["first"])) == "1 dead letters moved back to the usage queue.\n"
    assert queued() == 1 and UsageDeadLetter.objects.count() == 2
    assert UsageConsumer("c").drain() == 1
    assert billed(cw, "2026-11") == 5
    # The second batch arrives again from its agent before the operator replays the rest: the
    # replayed copy counts nothing twice.
    second_batch = json.loads(UsageDeadLetter.objects.get(id=ids["second"]).batch)
    assert post(token(cw), second_batch).status_code == 202
    assert _command("replay", "--all") == "2 dead letters moved back to the usage queue.\n"
    assert UsageConsumer("c").drain() == 3
    assert billed(cw, "2026-11") == 5 + 6
    # What still cannot be recorded comes back, with its reason; then it is purged.
    [broken] = UsageDeadLetter.objects.all()
    assert broken.reason.startswith("Not a usage batch")
    assert _command("purge", "--id", str(broken.id)) == f"Dead letter {broken.id} purged.\n"
    assert UsageDeadLetter.objects.count() == 0
    with pytest.raises(CommandError, match="No dead letter"):
        _command("purge", "--id", str(broken.id))
    assert "2 of the ids given are not dead letters." in _command("replay", "--id", "1", "--id", "2")


def _scrape(token: str | None) -> tuple[int, str, str]:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    response = Client().get("/metrics", **headers)
    return response.status_code, response.get("Content-Type", ""), response.content.decode()


def test_metrics_need_their_token_and_show_the_queue_and_dead_letters(cw, settings):
    settings.SAAS_METRICS_TOKEN = ""
    assert _scrape("anything")[0] == 404  # no token set: no metrics endpoint

    settings.SAAS_METRICS_TOKEN = "s3cret-metrics-token"
    assert _scrape(None)[0] == 401
    assert _scrape("s3cret-metrics-tokeN")[0] == 401
    status, content_type, text = _scrape("s3cret-metrics-token")
    assert status == 200 and content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE saas_usage_dead_letters gauge\nsaas_usage_dead_letters 0\n" in text
    assert "\nsaas_usage_queue_depth 0\n" in text
    assert "\nsaas_usage_queue_oldest_seconds 0\n" in text
    assert Client().post("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token").status_code == 405

    _dead_letters(cw)
    assert post(token(cw), batch((this_minute(), 1, "app", "2xx", 1))).status_code == 202
    UsageIntake.objects.update(received_at=NOW.replace(year=2000))  # waiting a long while
    text = _scrape("s3cret-metrics-token")[2]
    assert "\nsaas_usage_dead_letters 3\n" in text
    assert "\nsaas_usage_queue_depth 1\n" in text
    [oldest] = [line for line in text.splitlines() if line.startswith("saas_usage_queue_oldest_seconds ")]
    assert float(oldest.split()[1]) > 20 * 365 * 86400


def test_the_metrics_registry_renders_the_exposition_format():
    def broken() -> float:
        raise RuntimeError("no reading")

    try:
        metrics.register_gauge("test_gauge_ratio", "A ratio.\nWith a \\ backslash.", lambda: 0.25)
        metrics.register_gauge("test_gauge_broken", "Fails.", broken)
        with pytest.raises(ValueError):
            metrics.register_gauge("test gauge", "Not a name.", lambda: 1)
        text = metrics.render()
        assert "# HELP test_gauge_ratio A ratio.\\nWith a \\\\ backslash.\n" in text
        assert "# TYPE test_gauge_ratio gauge\ntest_gauge_ratio 0.25\n" in text
        assert "test_gauge_broken" not in text  # left out of the scrape, the others still there
        assert "saas_usage_queue_depth" in text
    finally:
        metrics._gauges.pop("test_gauge_ratio", None)
        metrics._gauges.pop("test_gauge_broken", None)
