"""`make demo`'s organization: made once, a working gateway token each start."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django_tenants.utils import schema_context

from saas.catalog.models import Consumer, Route
from saas.gateways.agents import authenticate_agent
from saas.gateways.models import ClusterToken, GatewayCluster

pytestmark = pytest.mark.django_db


def _set_up() -> dict:
    out = StringIO()
    call_command("set_up_demo", "--upstream-port", "18999", stdout=out)
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_the_demo_is_made_once_and_each_start_gets_a_fresh_token(api):
    first, second = _set_up(), _set_up()
    assert first["organization"] == second["organization"] and first["token"] != second["token"]
    assert authenticate_agent(first["token"]) is None  # the previous start's token is revoked
    context = authenticate_agent(second["token"])
    assert context is not None and context.cluster_id == second["cluster_id"]
    with schema_context(context.schema_name):
        assert GatewayCluster.objects.count() == 1
        assert sorted(Route.objects.values_list("name", flat=True)) == ["hello", "orders", "status"]
        assert Consumer.objects.count() == 2
        assert ClusterToken.objects.filter(revoked_at__isnull=True).count() == 1
    login = api.post(
        "/api/v1/auth/login/", {"email": first["email"], "password": first["password"]}, format="json"
    )
    assert login.status_code == 200
