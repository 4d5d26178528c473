"""An agent's spooled usage reaches the bill: through the real client, a live control plane,
the intake queue and a consumer; the control plane away in between loses nothing, and a batch
delivered twice is billed once."""

import uuid
from datetime import UTC, datetime

import httpx
import pytest
from django.db import connections
from django_tenants.utils import schema_context

from gateway_agent.client import ControlPlane
from gateway_agent.protocol import UsageBatch
from gateway_agent.usage import UsageSpool, send_pending
from saas.launcher.services import free_port
from tests.control_plane import env_sharing_test_database, start_control_plane, wait_until_up
from tests.factories import make_org_with_cluster

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


# The minute the batches report: this one, so the test holds whatever today's date is.
MINUTE = int(datetime.now(UTC).timestamp()) // 60 * 60


def _batch(requests: int) -> UsageBatch:
    minute = MINUTE
    return UsageBatch.model_validate(
        {
            "batch_id": uuid.uuid4().hex,
            "instance_id": "gw-1",
            "window_start": minute,
            "window_end": minute + 10,
            "items": [
                {
                    "minute": minute,
                    "route_id": 1,
                    "consumer": "app",
                    "status_class": "2xx",
                    "requests": requests,
                }
            ],
        }
    )


def test_spooled_usage_is_billed_once_across_an_outage(tmp_path):
    from saas.gateways.services import create_cluster_token
    from saas.metering.intake_queue import UsageConsumer
    from saas.metering.services import BillingPeriod, billable_calls

    org, author, cluster = make_org_with_cluster()
    with schema_context(org.schema_name):
        _, token = create_cluster_token(author, cluster, name="gw")
    connections.close_all()

    spool = UsageSpool(tmp_path / "usage")
    port = free_port()
    client = ControlPlane(f"http://127.0.0.1:{port}", token)
    first, second = _batch(40), _batch(2)
    spool.append(first)
    # The control plane is not there yet: everything stays in the spool.
    with pytest.raises(httpx.TransportError):
        send_pending(spool, client.post_usage)
    assert len(spool.pending()) == 1
    control = start_control_plane(port, env_sharing_test_database())
    try:
        wait_until_up(port)
        spool.append(second)
        spool.append(first)  # delivered again, as after a restart mid-send
        assert send_pending(UsageSpool(tmp_path / "usage"), client.post_usage) == 3
        assert spool.pending() == []
    finally:
        control.terminate()
        control.wait(timeout=20)
        client.close()
    consumer = UsageConsumer("e2e")
    consumer.drain()
    period = BillingPeriod.containing(datetime.fromtimestamp(MINUTE, UTC))
    assert billable_calls(org, period) == 42
