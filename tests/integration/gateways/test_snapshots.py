"""Snapshots: deterministic, diffable, and a rollback publishes a version equal to the old one."""

import contextlib
import threading

import pytest
from django.db import connection, transaction
from django_tenants.utils import schema_context

from gateway_agent.protocol import Snapshot, canonical_json, document_sha256
from saas.catalog.models import Consumer
from saas.gateways import publishing
from saas.gateways.models import ConfigSnapshot, GatewayCluster
from saas.gateways.publishing import compile_snapshot
from saas.gateways.snapshots import snapshot_document
from tenants.roles import Role
from tests.factories import build_catalog, make_org_with_cluster, self_signed_certificate


def test_compiling_is_deterministic_and_valid_against_the_protocol(cw):
    client = cw.client()
    build_catalog(client, cw.url)
    consumer = client.post(cw.url("consumers/"), {"username": "c1"}, format="json").json()
    client.post(
        cw.url(f"consumers/{consumer['id']}/credentials/"), {"type": "jwt-auth", "key": "c1"}, format="json"
    )
    cert, key = self_signed_certificate("a.example.com")
    client.post(
        cw.url("certificates/"), {"name": "a", "certificate": cert, "private_key": key}, format="json"
    )
    with schema_context(cw.world.a.org.schema_name):
        cluster = GatewayCluster.objects.get(id=cw.cluster_id)
        first, second = compile_snapshot(cluster), compile_snapshot(cluster)
        latest = ConfigSnapshot.objects.filter(cluster=cluster).order_by("-version").first()
    assert canonical_json(first) == canonical_json(second)
    assert document_sha256(first) == latest.sha256
    Snapshot.model_validate(first)


def test_consumers_section_holds_each_consumers_labels_plugins_and_credentials(cw):
    """Consumers that share labels, one with plugins of its own, one with nothing: each reads
    back as the API wrote it (the section decodes each distinct JSON text once)."""
    client = cw.client()
    limit = {"limit-count": {"count": 5, "time_window": 60}}
    written = [
        {"username": "shared-1", "labels": {"tier": "free"}},
        {"username": "shared-2", "labels": {"tier": "free"}},
        {"username": "limited", "labels": {"tier": "paid", "team": "a"}, "plugins": limit},
        {"username": "bare"},
    ]
    ids = [client.post(cw.url("consumers/"), body, format="json").json()["id"] for body in written]
    client.post(
        cw.url(f"consumers/{ids[2]}/credentials/"),
        {"type": "key-auth", "key": "a-key-for-the-limited-one"},
        format="json",
    )
    with schema_context(cw.world.a.org.schema_name):
        cluster = GatewayCluster.objects.get(id=cw.cluster_id)
        consumers = compile_snapshot(cluster, ["consumers"])["consumers"]
    assert [(c["id"], c["username"], c["labels"]) for c in consumers] == [
        (ids[0], "shared-1", {"tier": "free"}),
        (ids[1], "shared-2", {"tier": "free"}),
        (ids[2], "limited", {"tier": "paid", "team": "a"}),
        (ids[3], "bare", {}),
    ]
    assert consumers[2]["plugins"] == [{"name": "limit-count", "config": limit["limit-count"]}]
    assert [c["plugins"] for c in consumers if c["username"] != "limited"] == [[], [], []]
    [credential] = consumers[2]["credentials"]
    assert credential["type"] == "key-auth" and len(credential["key_sha256"]) == 64
    assert [c["credentials"] for c in consumers if c["username"] != "limited"] == [[], [], []]


def test_diff_and_rollback(cw):
    client = cw.client()
    made = build_catalog(client, cw.url)  # versions 1..3
    route_url = cw.url(f"routes/{made['routes']['id']}/")
    client.patch(route_url, {"priority": 7, "hosts": ["shop.example.com"]}, format="json")  # v4
    client.post(cw.url("consumers/"), {"username": "late"}, format="json")  # v5

    diff = client.get(cw.url("snapshots/diff/"), {"from": 3, "to": 5}).json()
    changes = diff["changes"]
    assert changes["routes"]["changed"][0]["changes"]["priority"] == {"old": 0, "new": 7}
    assert changes["routes"]["changed"][0]["changes"]["hosts"] == {"old": [], "new": ["shop.example.com"]}
    assert [c["username"] for c in changes["consumers"]["added"]] == ["late"]
    assert "upstreams" not in changes

    rolled = client.post(cw.url("snapshots/3/rollback/"))
    assert rolled.status_code == 201, rolled.content
    assert rolled.json()["version"] == 6
    summaries = {s["version"]: s for s in client.get(cw.url("snapshots/")).json()["results"]}
    assert summaries[6]["sha256"] == summaries[3]["sha256"]
    assert summaries[6]["reason"] == "rollback to version 3"
    # The catalog itself is back: the route as it was, the consumer gone.
    route = client.get(route_url).json()
    assert route["priority"] == 0 and route["hosts"] == []
    assert client.get(cw.url("consumers/")).json()["count"] == 0
    # And rolling forward again works the same way.
    assert client.post(cw.url("snapshots/5/rollback/")).status_code == 201
    assert client.get(cw.url("consumers/")).json()["count"] == 1

    assert client.get(cw.url("snapshots/diff/"), {"from": 1, "to": 99}).status_code == 400
    assert cw.client(Role.VIEWER).post(cw.url("snapshots/3/rollback/")).status_code == 403


def test_rollback_restores_deleted_secrets_as_they_were(cw):
    client = cw.client()
    consumer = client.post(cw.url("consumers/"), {"username": "keyed"}, format="json").json()
    creds = cw.url(f"consumers/{consumer['id']}/credentials/")
    key = client.post(creds, {"type": "key-auth"}, format="json").json()
    version = client.get(cw.url("snapshots/")).json()["results"][0]["version"]
    client.delete(cw.url(f"consumers/{consumer['id']}/"))
    client.post(cw.url(f"snapshots/{version}/rollback/"))
    restored = client.get(cw.url(f"consumers/{consumer['id']}/")).json()
    assert (
        restored["credentials"] == [{"id": key["id"], "type": "key-auth", "key_prefix": key["key"][:6]}]
        or restored["credentials"][0]["id"] == key["id"]
    )


def test_rollback_of_a_hashed_key_gives_the_old_document_and_the_same_secret(cw):
    """A key hashed with the cluster's secret, deleted, then rolled back: the version published
    is the old one, key-auth secret included (the secret never changes), and the key's digest
    is what it was; a rollback to before the first key serves no secret at all."""
    from saas.catalog.models import Credential

    client = cw.client()
    build_catalog(client, cw.url)
    before_keys = client.get(cw.url("snapshots/")).json()["results"][0]["version"]
    consumer = client.post(cw.url("consumers/"), {"username": "keyed"}, format="json").json()
    creds = cw.url(f"consumers/{consumer['id']}/credentials/")
    client.post(creds, {"type": "key-auth"}, format="json")
    version = client.get(cw.url("snapshots/")).json()["results"][0]["version"]
    with schema_context(cw.world.a.org.schema_name):
        digest = Credential.objects.get().key_sha256
    client.delete(cw.url(f"consumers/{consumer['id']}/"))
    assert client.get(cw.url("snapshots/")).json()["results"][0]["version"] == version + 1
    assert client.post(cw.url(f"snapshots/{version}/rollback/")).status_code == 201
    with schema_context(cw.world.a.org.schema_name):
        assert Credential.objects.get().key_sha256 == digest
        latest, old = (
            ConfigSnapshot.objects.order_by("-version")[0],
            ConfigSnapshot.objects.get(version=version),
        )
        assert latest.sha256 == old.sha256 and latest.sections["key_auth"] == old.sections["key_auth"]
    assert client.post(cw.url(f"snapshots/{before_keys}/rollback/")).status_code == 201
    document = client.get(cw.url(f"snapshots/{version + 3}/")).json()["document"]
    assert document["key_auth"] is None and document["consumers"] == []


@pytest.mark.django_db(transaction=True)
def test_two_consumers_published_at_once_are_both_in_the_latest_snapshot(monkeypatch):
    """Each write compiles while the other's row is not committed yet: the one compiling second
    must see the first's consumer, or the gateways lose it until the next change."""
    organization, _, cluster = make_org_with_cluster()
    both_compiled = threading.Barrier(2, timeout=3)
    compile_whole = publishing.compile_snapshot

    def compile_then_wait(*args, **kwargs):
        document = compile_whole(*args, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):
            both_compiled.wait()  # the other write compiles meanwhile, unless it waits for a lock
        return document

    monkeypatch.setattr(publishing, "compile_snapshot", compile_then_wait)
    failures: list[BaseException] = []

    def add(username: str) -> None:
        try:
            with schema_context(organization.schema_name), transaction.atomic():
                Consumer.objects.create(cluster=cluster, username=username)
                publishing.publish(cluster, author="test", reason=f"add {username}", sections=["consumers"])
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    writers = [threading.Thread(target=add, args=(name,)) for name in ("ann", "bob")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert failures == []
    with schema_context(organization.schema_name):
        latest = ConfigSnapshot.objects.filter(cluster=cluster).order_by("-version").first()
        assert sorted(consumer["username"] for consumer in snapshot_document(latest)["consumers"]) == [
            "ann",
            "bob",
        ]
