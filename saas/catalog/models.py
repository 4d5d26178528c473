"""The API catalog of a gateway cluster. These tables live in each organization's own schema;
every entity belongs to one cluster and is named uniquely within it."""

from typing import Any

from django.db import models


class CatalogEntity(models.Model):
    cluster = models.ForeignKey("gateways.GatewayCluster", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Optimistic concurrency: every save of a stored entity makes its next revision, which the
    # API serves as its ETag; a write naming an older one (If-Match) is refused.
    revision = models.PositiveIntegerField(default=1)
    updated_by = models.CharField(max_length=254, blank=True)

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            self.revision += 1
        super().save(*args, **kwargs)


class Upstream(CatalogEntity):
    name = models.CharField(max_length=100)
    targets = models.JSONField(default=list)
    load_balancing = models.CharField(max_length=20, default="roundrobin")
    hash_header = models.CharField(max_length=256, blank=True)
    scheme = models.CharField(max_length=5, default="http")
    tls_sni = models.CharField(max_length=253, blank=True)
    tls_verify = models.BooleanField(default=False)
    tls_ca_pem = models.TextField(blank=True)
    timeouts = models.JSONField(default=dict)
    retries = models.PositiveSmallIntegerField(default=1)
    active_health_check = models.JSONField(null=True, blank=True)
    passive_health_check = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["cluster", "name"], name="upstream_name_unique")]

    def __str__(self) -> str:
        return self.name


class Service(CatalogEntity):
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    # Deleting an upstream in use is refused by the service layer, with the services named.
    upstream = models.ForeignKey(Upstream, on_delete=models.CASCADE, related_name="services")
    plugins = models.JSONField(default=dict)
    # The OpenAPI document the service was imported from: the developer portal may publish it.
    openapi_document = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["cluster", "name"], name="service_name_unique")]

    def __str__(self) -> str:
        return self.name


class Route(CatalogEntity):
    name = models.CharField(max_length=100)
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="routes")
    hosts = models.JSONField(default=list)
    paths = models.JSONField(default=list)
    methods = models.JSONField(default=list)
    headers = models.JSONField(default=list)
    priority = models.IntegerField(default=0)
    strip_path_prefix = models.CharField(max_length=1000, blank=True)
    plugins = models.JSONField(default=dict)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["cluster", "name"], name="route_name_unique")]
        indexes = [models.Index(fields=["cluster", "priority"], name="route_cluster_priority")]

    def __str__(self) -> str:
        return self.name


class Consumer(CatalogEntity):
    username = models.CharField(max_length=100)
    labels = models.JSONField(default=dict)
    plugins = models.JSONField(default=dict)
    # A disabled consumer stays in the snapshot (a rollback keeps it) but the gateway accepts none
    # of its credentials: the developer portal suspends an application so, and reinstates it.
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "username"], name="consumer_username_unique")
        ]

    def __str__(self) -> str:
        return self.username


class Credential(CatalogEntity):
    KEY_AUTH = "key-auth"
    JWT_AUTH = "jwt-auth"
    BASIC_AUTH = "basic-auth"
    HMAC_AUTH = "hmac-auth"
    # How a key-auth key is hashed: with the cluster's KeyAuthSecret (every key made since it
    # exists), or plain SHA-256 (keys from before it, and hashes a declarative file brings).
    KEY_HMAC_SHA256 = "hmac-sha256"
    KEY_SHA256 = "sha256"

    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="credentials")
    type = models.CharField(max_length=16)
    # key-auth: only the key's digest (hex, by `key_scheme`), which the gateway matches.
    key_sha256 = models.CharField(max_length=64, blank=True)
    key_scheme = models.CharField(max_length=12, default=KEY_HMAC_SHA256, blank=True)
    key_prefix = models.CharField(max_length=12, blank=True)
    # jwt-auth
    jwt_key = models.CharField(max_length=200, blank=True)
    jwt_algorithm = models.CharField(max_length=8, blank=True)
    jwt_secret_ciphertext = models.TextField(blank=True)
    jwt_public_key_pem = models.TextField(blank=True)
    # basic-auth: crypt(3) SHA-512, which HAProxy userlists verify.
    basic_username = models.CharField(max_length=100, blank=True)
    basic_password_crypt = models.CharField(max_length=200, blank=True)
    # hmac-auth: the key id a request names, and the shared secret, encrypted at rest.
    hmac_key_id = models.CharField(max_length=100, blank=True)
    hmac_secret_ciphertext = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "key_sha256"],
                condition=models.Q(type="key-auth"),
                name="credential_key_unique",
            ),
            models.UniqueConstraint(
                fields=["cluster", "jwt_key"],
                condition=models.Q(type="jwt-auth"),
                name="credential_jwt_key_unique",
            ),
            models.UniqueConstraint(
                fields=["cluster", "basic_username"],
                condition=models.Q(type="basic-auth"),
                name="credential_basic_username_unique",
            ),
            models.UniqueConstraint(
                fields=["cluster", "hmac_key_id"],
                condition=models.Q(type="hmac-auth"),
                name="credential_hmac_key_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} of {self.consumer_id}"


class KeyAuthSecret(models.Model):
    """The cluster's server-side secret that key-auth keys are hashed with (HMAC-SHA256): a
    stolen database or snapshot gives digests no one can test guesses against without it. Made
    with the cluster's first key and never changed (a new secret would need every clear key);
    encrypted at rest, decrypted only into what the cluster's agents are served."""

    cluster = models.OneToOneField("gateways.GatewayCluster", on_delete=models.CASCADE, related_name="+")
    secret_ciphertext = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"key-auth secret of cluster {self.cluster_id}"


class GlobalPlugin(CatalogEntity):
    name = models.CharField(max_length=50)
    config = models.JSONField(default=dict)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["cluster", "name"], name="global_plugin_unique")]

    def __str__(self) -> str:
        return self.name


class Certificate(CatalogEntity):
    name = models.CharField(max_length=100)
    certificate_pem = models.TextField()
    private_key_ciphertext = models.TextField()
    snis = models.JSONField(default=list)
    not_after = models.DateTimeField()
    fingerprint_sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["cluster", "name"], name="certificate_name_unique")]

    def __str__(self) -> str:
        return self.name
