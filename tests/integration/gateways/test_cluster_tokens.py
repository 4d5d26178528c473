"""Cluster (agent) tokens: listed with their last use, rotated with a grace period the caller
chooses (the old secret works until it ends, then is refused), revoked."""

from datetime import UTC, datetime, timedelta

import pytest
from django_tenants.utils import schema_context

from saas.gateways import agents
from saas.gateways.models import ClusterToken
from tenants.models import AuditEntry
from tenants.roles import Role
from tests.agent_api import register_gateway

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
# Registration reads the database on a thread of its own: what a test wrote must be committed.
pytestmark = [pytest.mark.time_machine(NOW, tick=False), pytest.mark.django_db(transaction=True)]


def _create(cw, name: str = "gw") -> dict:
    created = cw.client(Role.ADMIN).post(cw.url("tokens/"), {"name": name}, format="json")
    assert created.status_code == 201, created.content
    return created.json()


def _rotate(cw, token_id: int, body: object = None):
    return cw.client(Role.ADMIN).post(cw.url(f"tokens/{token_id}/rotate/"), body, format="json")


def _register(secret: str) -> int:
    return register_gateway(secret).status_code


def _listed(cw, query: str = "") -> list[dict]:
    response = cw.client(Role.ADMIN).get(cw.url(f"tokens/{query}"))
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_listed_with_last_use_recorded_at_most_once_a_minute(cw, time_machine):
    made = _create(cw)
    [listed] = _listed(cw)
    assert listed["last_used_at"] is None and listed["status"] == "active" and listed["revoked_at"] is None
    assert _register(made["token"]) == 201
    [listed] = _listed(cw)
    assert datetime.fromisoformat(listed["last_used_at"]) == NOW

    time_machine.move_to(NOW + timedelta(seconds=30), tick=False)
    assert agents.authenticate_agent(made["token"]) is not None
    with schema_context(cw.world.a.org.schema_name):
        assert ClusterToken.objects.get(id=made["id"]).last_used_at == NOW  # not written again
    time_machine.move_to(NOW + timedelta(seconds=61), tick=False)
    assert agents.authenticate_agent(made["token"]) is not None
    with schema_context(cw.world.a.org.schema_name):
        assert ClusterToken.objects.get(id=made["id"]).last_used_at == NOW + timedelta(seconds=61)


def test_rotation_keeps_the_old_secret_for_the_grace_period_then_refuses_it(cw, time_machine):
    old = _create(cw, "edge")
    rotated = _rotate(cw, old["id"], {"grace_seconds": 600})
    assert rotated.status_code == 201, rotated.content
    new = rotated.json()
    assert new["name"] == "edge" and new["token"] != old["token"] and new["status"] == "active"

    by_id = {t["id"]: t for t in _listed(cw)}
    assert by_id[old["id"]]["status"] == "rotating"
    assert datetime.fromisoformat(by_id[old["id"]]["revoked_at"]) == NOW + timedelta(seconds=600)
    for secret in (old["token"], new["token"]):
        assert agents.authenticate_agent(secret) is not None
        assert agents.authenticate_agent_cached(secret) is not None  # remembered 30 s from now
    assert _register(old["token"]) == 201

    time_machine.move_to(NOW + timedelta(seconds=599), tick=False)
    assert agents.authenticate_agent(old["token"]) is not None
    for secret in (old["token"], new["token"]):
        assert agents.authenticate_agent_cached(secret) is not None  # remembered from 599 s
    time_machine.move_to(NOW + timedelta(seconds=600), tick=False)
    assert agents.authenticate_agent(old["token"]) is None
    # The 30 s cache of heartbeats and usage intake does not outlive the grace period either.
    assert agents.recently_authenticated(old["token"]) is None
    assert agents.recently_authenticated(new["token"]) is not None
    assert agents.authenticate_agent_cached(old["token"]) is None
    # It reads the product's clock: 30 s on, nothing is remembered.
    time_machine.move_to(NOW + timedelta(seconds=630), tick=False)
    assert agents.recently_authenticated(new["token"]) is None
    assert _register(old["token"]) == 401
    assert agents.authenticate_agent(new["token"]) is not None
    assert {t["id"]: t["status"] for t in _listed(cw)} == {old["id"]: "revoked", new["id"]: "active"}

    entry = AuditEntry.objects.get(organization=cw.world.a.org, action="cluster_token.rotate")
    assert entry.changes["after"]["grace_seconds"] == 600
    assert entry.actor_email == cw.world.a.user(Role.ADMIN).email


def test_rotation_grace_defaults_to_an_hour_and_zero_refuses_at_once(cw):
    first = _create(cw, "default")
    assert _rotate(cw, first["id"]).status_code == 201
    with schema_context(cw.world.a.org.schema_name):
        assert ClusterToken.objects.get(id=first["id"]).revoked_at == NOW + timedelta(hours=1)

    second = _create(cw, "now")
    assert _rotate(cw, second["id"], {"grace_seconds": 0}).status_code == 201
    assert agents.authenticate_agent(second["token"]) is None


@pytest.mark.parametrize(
    "body", [{"grace_seconds": -1}, {"grace_seconds": 604801}, {"grace_seconds": "soon"}, {"grace": 5}, [1]]
)
def test_rotation_refuses_a_bad_grace_period(cw, body):
    made = _create(cw)
    response = _rotate(cw, made["id"], body)
    assert response.status_code == 400, response.content
    assert response.json()["detail"]
    assert agents.authenticate_agent(made["token"]) is not None  # nothing changed
    assert len(_listed(cw)) == 1


def test_a_rotating_token_cannot_be_rotated_again_but_can_be_revoked_at_once(cw):
    old = _create(cw)
    new = _rotate(cw, old["id"], {"grace_seconds": 3600}).json()
    again = _rotate(cw, old["id"], {"grace_seconds": 60})
    assert again.status_code == 400 and "token" in again.json()["errors"]

    admin = cw.client(Role.ADMIN)
    assert admin.delete(cw.url(f"tokens/{old['id']}/")).status_code == 204
    assert agents.authenticate_agent(old["token"]) is None
    assert agents.authenticate_agent(new["token"]) is not None
    assert admin.delete(cw.url(f"tokens/{new['id']}/")).status_code == 204
    assert agents.authenticate_agent(new["token"]) is None
    assert AuditEntry.objects.filter(organization=cw.world.a.org, action="cluster_token.revoke").count() == 2


def test_token_list_search_sort_and_roles(cw):
    for name in ("edge-eu", "edge-us", "batch"):
        _create(cw, name)
    assert [t["name"] for t in _listed(cw, "?search=EDGE&ordering=name")] == ["edge-eu", "edge-us"]
    assert [t["name"] for t in _listed(cw, "?ordering=-name")] == ["edge-us", "edge-eu", "batch"]
    assert [t["name"] for t in _listed(cw)] == ["batch", "edge-us", "edge-eu"]  # newest first
    bad = cw.client(Role.ADMIN).get(cw.url("tokens/?ordering=token_hash"))
    assert bad.status_code == 400 and "ordering" in bad.json()["errors"]
    # Viewers and developers do not see agent tokens.
    assert cw.client(Role.VIEWER).get(cw.url("tokens/")).status_code == 403
    assert cw.client(Role.DEVELOPER).post(cw.url("tokens/1/rotate/")).status_code == 403
