"""Declarative config: export, dry-run plan, apply (create, update, delete), round trip; and
OpenAPI import."""

from pathlib import Path

import yaml
from django_tenants.utils import schema_context

from saas.gateways.models import ConfigSnapshot
from tests.factories import build_catalog, self_signed_certificate

PETSTORE = Path(__file__).resolve().parents[2] / "data" / "openapi" / "petstore-v3.yaml"


def _latest(cw, side="a"):
    schema = getattr(cw.world, side).org.schema_name
    cluster_id = cw.cluster_id if side == "a" else cw.other_cluster_id
    with schema_context(schema):
        return ConfigSnapshot.objects.filter(cluster_id=cluster_id).order_by("-version").first()


def _full_catalog(client, cw):
    build_catalog(client, cw.url)
    consumer = client.post(
        cw.url("consumers/"),
        {"username": "app", "plugins": {"limit-count": {"count": 5, "time_window": 60}}},
        format="json",
    ).json()
    creds = cw.url(f"consumers/{consumer['id']}/credentials/")
    client.post(creds, {"type": "key-auth"}, format="json")
    client.post(creds, {"type": "jwt-auth", "key": "app-jwt"}, format="json")
    client.post(creds, {"type": "basic-auth", "username": "app", "password": "long password"}, format="json")
    cert, key = self_signed_certificate("shop.example.com")
    client.post(
        cw.url("certificates/"), {"name": "shop", "certificate": cert, "private_key": key}, format="json"
    )
    client.put(cw.url("plugins/cors/"), {"allow_origins": ["https://shop.example.com"]}, format="json")


def test_export_then_apply_round_trips_to_an_identical_snapshot(cw):
    client = cw.client()
    _full_catalog(client, cw)
    exported = client.get(cw.url("config/"))
    assert exported.status_code == 200
    assert exported["Content-Type"].startswith("application/yaml")
    text = exported.content.decode()
    document = yaml.safe_load(text)
    assert [u["name"] for u in document["upstreams"]] == ["orders"]
    # No secret leaves: no key, no JWT secret, no password, no private key.
    assert "PRIVATE KEY" not in text and "password" not in text and "secret" not in text
    before = _latest(cw)

    plan = client.post(cw.url("config/?dry_run=true"), text, content_type="application/yaml").json()
    assert plan == {"dry_run": True, "plan": [], "based_on_version": before.version, "version": None}
    applied = client.post(cw.url("config/"), text, content_type="application/yaml").json()
    assert applied["plan"] == []
    assert _latest(cw).sha256 == before.sha256 and _latest(cw).version == before.version


def test_dry_run_shows_the_plan_and_changes_nothing_then_apply_does_it(cw):
    client = cw.client()
    build_catalog(client, cw.url)
    document = client.get(cw.url("config/?format=json")).json()
    document["routes"][0]["priority"] = 3
    document["routes"].append(
        {
            "name": "create-order",
            "service": "orders-api",
            "paths": [{"value": "/orders"}],
            "methods": ["POST"],
        }
    )
    document["upstreams"].append({"name": "spare", "targets": [{"host": "10.0.0.9", "port": 80}]})
    document["consumers"] = [
        {"username": "new-app", "credentials": [{"type": "key-auth", "key": "a-long-enough-api-key-123"}]}
    ]
    before = _latest(cw)

    dry = client.post(cw.url("config/?dry_run=true"), document, format="json")
    assert dry.status_code == 200, dry.content
    expected = [
        {"action": "create", "kind": "upstreams", "name": "spare"},
        {"action": "update", "kind": "routes", "name": "list-orders", "fields": ["priority"]},
        {"action": "create", "kind": "routes", "name": "create-order"},
        {"action": "create", "kind": "consumers", "name": "new-app"},
    ]
    assert [p for p in dry.json()["plan"] if p["kind"] != "credentials"] == expected
    assert _latest(cw).version == before.version  # nothing changed
    assert client.get(cw.url("routes/")).json()["count"] == 1

    applied = client.post(cw.url("config/"), document, format="json").json()
    assert [p for p in applied["plan"] if p["kind"] != "credentials"] == expected
    assert applied["version"] == before.version + 1  # one snapshot for the whole apply
    assert client.get(cw.url("routes/")).json()["count"] == 2

    # Deleting by leaving out.
    document["routes"] = [r for r in document["routes"] if r["name"] != "create-order"]
    document["upstreams"] = [u for u in document["upstreams"] if u["name"] != "spare"]
    removed = client.post(cw.url("config/"), document, format="json").json()["plan"]
    assert {"action": "delete", "kind": "routes", "name": "create-order"} in removed
    assert {"action": "delete", "kind": "upstreams", "name": "spare"} in removed


def test_apply_refuses_what_the_api_refuses_and_writes_nothing(cw):
    client = cw.client()
    build_catalog(client, cw.url)
    before = _latest(cw)
    document = client.get(cw.url("config/?format=json")).json()
    document["upstreams"][0]["targets"][0]["port"] = 70000
    response = client.post(cw.url("config/"), document, format="json")
    assert response.status_code == 400
    assert "upstreams.orders.targets.0.port" in response.json()["errors"]
    api = client.post(cw.url("upstreams/"), {**document["upstreams"][0], "name": "x"}, format="json").json()
    assert api["errors"]["targets.0.port"] == response.json()["errors"]["upstreams.orders.targets.0.port"]
    assert _latest(cw).version == before.version
    bad_yaml = client.post(cw.url("config/"), "upstreams: [", content_type="application/yaml")
    assert bad_yaml.status_code == 400
    unknown = client.post(cw.url("config/"), {"gateways": []}, format="json")
    assert unknown.status_code == 400 and "gateways" in unknown.json()["errors"]


def test_moving_config_to_another_cluster_through_export_and_apply(cw):
    from saas.gateways.models import GatewayCluster

    client = cw.client()
    build_catalog(client, cw.url)
    document = client.get(cw.url("config/?format=json")).json()
    with schema_context(cw.world.a.org.schema_name):
        staging = GatewayCluster.objects.create(name="staging")
    response = client.post(cw.url("config/", cluster_id=staging.id), document, format="json")
    assert response.status_code == 200, response.content
    assert client.get(cw.url("routes/", cluster_id=staging.id)).json()["results"][0]["name"] == "list-orders"


def test_import_the_petstore(cw):
    client = cw.client()
    response = client.post(
        cw.url("openapi-import/?service=petstore"), PETSTORE.read_text(), content_type="application/yaml"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["upstream"] == "petstore-upstream"
    routes = {r["name"]: r for r in client.get(cw.url("routes/?page_size=100")).json()["results"]}
    assert len(routes) == 19
    assert routes["getPetById"]["paths"] == [{"type": "regex", "value": "^/api/v3/pet/[^/]+$"}]
    assert routes["getPetById"]["methods"] == ["GET"] and routes["getPetById"]["priority"] == 0
    assert routes["findPetsByStatus"]["paths"] == [{"type": "exact", "value": "/api/v3/pet/findByStatus"}]
    assert routes["findPetsByStatus"]["priority"] == 1
    assert routes["updatePet"]["methods"] == ["PUT"] and routes["addPet"]["methods"] == ["POST"]
    upstream = client.get(cw.url("upstreams/")).json()["results"][0]
    assert upstream["targets"] == [{"host": "petstore3.swagger.io", "port": 443, "weight": 100}]
    assert upstream["scheme"] == "https" and upstream["tls_sni"] == "petstore3.swagger.io"
    assert body["version"] == _latest(cw).version  # one snapshot for the import

    again = client.post(
        cw.url("openapi-import/?service=petstore"), PETSTORE.read_text(), content_type="application/yaml"
    )
    assert again.status_code == 400
    not_openapi = client.post(cw.url("openapi-import/"), {"swagger": "2.0"}, format="json")
    assert not_openapi.status_code == 400


def test_key_auth_keys_in_files_by_their_digest_or_the_key_itself(cw):
    """A key made in this cluster is exported as its HMAC digest, which only this cluster can
    use: applied here it changes nothing, applied to another cluster it is refused, by name.
    A file may still bring a key as its plain SHA-256 (from a tool that hashed it so), or the
    key itself, which is then recognized whichever way it was stored."""
    import hashlib

    from saas.gateways.models import GatewayCluster

    client = cw.client()
    consumer = client.post(cw.url("consumers/"), {"username": "app"}, format="json").json()
    creds = cw.url(f"consumers/{consumer['id']}/credentials/")
    client.post(creds, {"type": "key-auth", "key": "a-key-of-this-cluster-001"}, format="json")
    document = client.get(cw.url("config/?format=json")).json()
    [credential] = document["consumers"][0]["credentials"]
    assert set(credential) == {"type", "key_hmac_sha256"}

    same_key = {
        **document,
        "consumers": [
            {"username": "app", "credentials": [{"type": "key-auth", "key": "a-key-of-this-cluster-001"}]}
        ],
    }
    assert client.post(cw.url("config/?dry_run=true"), same_key, format="json").json()["plan"] == []

    with schema_context(cw.world.a.org.schema_name):
        staging = GatewayCluster.objects.create(name="staging")
    moved = client.post(cw.url("config/", cluster_id=staging.id), document, format="json")
    assert moved.status_code == 400
    assert "consumers.app.credentials.key_hmac_sha256" in moved.json()["errors"]

    legacy = hashlib.sha256(b"a-key-hashed-elsewhere-01").hexdigest()
    document["consumers"][0]["credentials"].append({"type": "key-auth", "key_sha256": legacy})
    applied = client.post(cw.url("config/"), document, format="json")
    assert applied.status_code == 200, applied.content
    exported = client.get(cw.url("config/?format=json")).json()["consumers"][0]["credentials"]
    assert {"type": "key-auth", "key_sha256": legacy} in exported
    # The clear key finds the legacy digest: nothing to create, nothing to delete.
    by_key = [
        {"type": "key-auth", "key": "a-key-of-this-cluster-001"},
        {"type": "key-auth", "key": "a-key-hashed-elsewhere-01"},
    ]
    document["consumers"][0]["credentials"] = by_key
    assert client.post(cw.url("config/?dry_run=true"), document, format="json").json()["plan"] == []
