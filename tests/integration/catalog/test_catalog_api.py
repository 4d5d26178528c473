"""A developer describes an API (upstream, service, route, consumer with credentials,
certificate, plugins); every change publishes a new snapshot."""

import base64
import hashlib
import hmac

from django_tenants.utils import schema_context

from core.encryption import decrypt_secret
from saas.catalog.models import Credential, KeyAuthSecret
from saas.gateways.models import ConfigSnapshot
from tenants.models import AuditEntry
from tenants.roles import Role
from tests.factories import ROUTE, build_catalog, self_signed_certificate


def _versions(cw) -> list[int]:
    with schema_context(cw.world.a.org.schema_name):
        return list(
            ConfigSnapshot.objects.filter(cluster_id=cw.cluster_id)
            .order_by("version")
            .values_list("version", flat=True)
        )


def test_describe_an_api_and_every_change_publishes(cw):
    client = cw.client()
    made = build_catalog(client, cw.url)
    assert made["upstreams"]["targets"][0] == {"host": "10.0.0.1", "port": 8080, "weight": 100}
    assert made["routes"]["service"] == "orders-api"
    assert _versions(cw) == [1, 2, 3]

    latest = client.get(cw.url("snapshots/3/")).json()
    document = latest["document"]
    assert document["schema_version"] == 1
    assert [r["name"] for r in document["routes"]] == ["list-orders"]
    assert document["routes"][0]["service_id"] == made["services"]["id"]
    assert document["services"][0]["upstream_id"] == made["upstreams"]["id"]
    assert latest["author"] == cw.world.a.user(Role.DEVELOPER).email

    # PATCH merges onto the current entity.
    patched = client.patch(cw.url(f"routes/{made['routes']['id']}/"), {"priority": 5}, format="json")
    assert patched.status_code == 200
    assert patched.json()["paths"] == ROUTE["paths"] and patched.json()["priority"] == 5
    # Saving without a change publishes nothing new.
    client.patch(cw.url(f"routes/{made['routes']['id']}/"), {"priority": 5}, format="json")
    assert _versions(cw) == [1, 2, 3, 4]

    listed = client.get(cw.url("routes/")).json()
    assert listed["count"] == 1
    assert client.delete(cw.url(f"routes/{made['routes']['id']}/")).status_code == 204
    assert _versions(cw)[-1] == 5
    actions = list(AuditEntry.objects.filter(organization=cw.world.a.org).values_list("action", flat=True))
    assert {"upstream.create", "service.create", "route.create", "route.update", "route.delete"} <= set(
        actions
    )


def test_consumers_and_credentials_keep_secrets_out_of_sight(cw):
    client = cw.client()
    consumer = client.post(
        cw.url("consumers/"), {"username": "mobile-app", "labels": {"team": "ios"}}, format="json"
    ).json()
    base = cw.url(f"consumers/{consumer['id']}/credentials/")

    generated = client.post(base, {"type": "key-auth"}, format="json").json()
    key = generated["key"]
    supplied = client.post(base, {"type": "key-auth", "key": "supplied-key-0123456789"}, format="json").json()
    assert "key" not in supplied  # supplied secrets are not echoed
    jwt = client.post(base, {"type": "jwt-auth", "key": "mobile", "algorithm": "HS256"}, format="json").json()
    basic = client.post(
        base, {"type": "basic-auth", "username": "mobile", "password": "s3cret-pass"}, format="json"
    ).json()

    with schema_context(cw.world.a.org.schema_name):
        stored = {c.id: c for c in Credential.objects.filter(consumer_id=consumer["id"])}
        secret = base64.b64decode(decrypt_secret(KeyAuthSecret.objects.get().secret_ciphertext))
    # Keys are hashed with the cluster's server-side secret: the stored digest is no SHA-256 of
    # the key, so a copy of the database gives nothing a guessed key can be checked against.
    assert len(secret) == 32
    assert stored[generated["id"]].key_sha256 == hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()
    assert stored[generated["id"]].key_scheme == "hmac-sha256"
    assert stored[supplied["id"]].key_sha256 != hashlib.sha256(b"supplied-key-0123456789").hexdigest()
    # A prefix is kept only of the key we generated, never of one someone chose.
    assert (stored[generated["id"]].key_prefix, stored[supplied["id"]].key_prefix) == (key[:6], "")
    assert decrypt_secret(stored[jwt["id"]].jwt_secret_ciphertext) == jwt["secret"]
    password_crypt = stored[basic["id"]].basic_password_crypt
    assert password_crypt.startswith("$6$")
    assert _system_crypt("s3cret-pass", password_crypt) == password_crypt  # what HAProxy's userlist runs

    shown = client.get(cw.url(f"consumers/{consumer['id']}/")).json()["credentials"]
    text = str(shown)
    assert key not in text and jwt["secret"] not in text and "s3cret-pass" not in text
    snapshot = client.get(cw.url("snapshots/")).json()["results"][0]["version"]
    document = client.get(cw.url(f"snapshots/{snapshot}/")).json()["document"]
    creds = {c["type"]: c for c in document["consumers"][0]["credentials"]}
    assert creds["key-auth"]["key_sha256"] in {
        stored[generated["id"]].key_sha256,
        stored[supplied["id"]].key_sha256,
    }
    assert creds["key-auth"]["scheme"] == "hmac-sha256"
    assert creds["jwt-auth"]["secret_ciphertext"].startswith("encrypted:")  # redacted for people
    assert document["key_auth"]["secret_ciphertext"].startswith("encrypted:")
    assert key not in str(document) and jwt["secret"] not in str(document)

    duplicate = client.post(base, {"type": "key-auth", "key": "supplied-key-0123456789"}, format="json")
    assert duplicate.status_code == 400
    assert "key" in duplicate.json()["errors"]
    assert client.delete(f"{base}{generated['id']}/").status_code == 204


def test_certificates_read_snis_and_expiry_and_encrypt_the_key(cw):
    client = cw.client()
    cert, key = self_signed_certificate("api.example.com", "*.api.example.com")
    response = client.post(
        cw.url("certificates/"), {"name": "api", "certificate": cert, "private_key": key}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["snis"] == ["*.api.example.com", "api.example.com"]
    assert body["not_after"]
    assert "private_key" not in body and "PRIVATE KEY" not in str(body)

    _other_cert, other_key = self_signed_certificate("other.example.com")
    mismatch = client.post(
        cw.url("certificates/"), {"name": "x", "certificate": cert, "private_key": other_key}, format="json"
    )
    assert mismatch.status_code == 400
    assert mismatch.json()["errors"]["private_key"] == ["The private key does not match the certificate."]
    garbage = client.post(
        cw.url("certificates/"), {"name": "y", "certificate": "not pem", "private_key": key}, format="json"
    )
    assert garbage.status_code == 400
    assert "certificate" in garbage.json()["errors"]


def test_plugins_at_every_scope_and_the_schema_endpoint(cw):
    client = cw.client()
    schemas = client.get("/api/v1/plugins/").json()
    names = {p["name"] for p in schemas["plugins"]}
    assert names == {
        "key-auth", "jwt-auth", "basic-auth", "hmac-auth", "limit-count", "limit-req", "ip-restriction",
        "cors", "proxy-rewrite", "response-rewrite", "traffic-split", "request-size-limit", "redirect",
        "mocking", "consumer-restriction",
    }  # fmt: skip
    from gateway_agent.plugins import SUPPORTED

    assert names == SUPPORTED  # what the catalog accepts, gateways enforce
    assert schemas["precedence"] == ["consumer", "route", "service", "global"]

    made = build_catalog(client, cw.url)
    assert client.put(cw.url("plugins/cors/"), {"allow_origins": ["*"]}, format="json").status_code == 200
    service = client.patch(
        cw.url(f"services/{made['services']['id']}/"),
        {"plugins": {"key-auth": {}, "limit-count": {"count": 100, "time_window": 60, "key": "consumer"}}},
        format="json",
    )
    assert service.status_code == 200, service.content
    consumer = client.post(
        cw.url("consumers/"),
        {"username": "vip", "plugins": {"limit-count": {"count": 1000, "time_window": 60}}},
        format="json",
    )
    assert consumer.status_code == 201
    document = client.get(cw.url(f"snapshots/{_versions(cw)[-1]}/")).json()["document"]
    assert document["global_plugins"] == [{"name": "cors", "config": {"allow_origins": ["*"]}}]
    assert [p["name"] for p in document["services"][0]["plugins"]] == ["key-auth", "limit-count"]

    unknown = client.patch(
        cw.url(f"routes/{made['routes']['id']}/"), {"plugins": {"teleport": {}}}, format="json"
    )
    assert unknown.status_code == 400
    assert "Unknown plugin 'teleport'" in unknown.json()["errors"]["plugins.teleport"][0]
    broken = client.patch(
        cw.url(f"routes/{made['routes']['id']}/"),
        {"plugins": {"limit-count": {"count": -1, "time_window": 60}}},
        format="json",
    )
    assert broken.status_code == 400
    assert "limit-count.count" in broken.json()["errors"]["plugins.limit-count"][0]
    wrong_scope = client.post(
        cw.url("consumers/"), {"username": "x", "plugins": {"cors": {"allow_origins": ["*"]}}}, format="json"
    )
    assert wrong_scope.status_code == 400
    split = client.patch(
        cw.url(f"routes/{made['routes']['id']}/"),
        {"plugins": {"traffic-split": {"weighted_upstreams": [{"upstream": "nowhere", "weight": 10}]}}},
        format="json",
    )
    assert split.status_code == 400
    assert "no upstream named 'nowhere'" in split.json()["detail"]


def test_upstream_in_use_cannot_be_deleted(cw):
    client = cw.client()
    made = build_catalog(client, cw.url)
    response = client.delete(cw.url(f"upstreams/{made['upstreams']['id']}/"))
    assert response.status_code == 400
    assert "orders-api" in response.json()["detail"]
    assert client.delete(cw.url(f"services/{made['services']['id']}/")).status_code == 204
    assert client.get(cw.url("routes/")).json()["count"] == 0  # the service's routes went with it
    assert client.delete(cw.url(f"upstreams/{made['upstreams']['id']}/")).status_code == 204


def _system_crypt(password: str, salt: str) -> str:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # the C library's crypt(3), as HAProxy calls it

    return str(crypt.crypt(password, salt))


def test_traffic_split_keeps_only_the_upstreams_it_names(cw):
    client = cw.client()
    made = build_catalog(client, cw.url)  # upstream "orders"
    for name in ("canary", "canary-2"):
        client.post(
            cw.url("upstreams/"), {"name": name, "targets": [{"host": "10.0.0.5", "port": 80}]}, format="json"
        )
    split = {"traffic-split": {"weighted_upstreams": [{"upstream": "canary-2", "weight": 10}]}}
    assert (
        client.patch(cw.url(f"routes/{made['routes']['id']}/"), {"plugins": split}, format="json").status_code
        == 200
    )
    ids = {u["name"]: u["id"] for u in client.get(cw.url("upstreams/")).json()["results"]}
    in_use = client.delete(cw.url(f"upstreams/{ids['canary-2']}/"))
    assert in_use.status_code == 400 and "list-orders" in in_use.json()["detail"]
    # "canary" is only a prefix of the name in use: it may go.
    assert client.delete(cw.url(f"upstreams/{ids['canary']}/")).status_code == 204
