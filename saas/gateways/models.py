"""Gateway clusters, their agent tokens and their config snapshots. These tables live in each
organization's own schema."""

from datetime import datetime

from django.db import models


class GatewayCluster(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=500, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


CLUSTER_TOKEN_PREFIX = "gct_"  # then the organization id, "_", and the secret


class ClusterTokenQuerySet(models.QuerySet["ClusterToken"]):
    def accepted_at(self, now: datetime) -> "ClusterTokenQuerySet":
        """The tokens an agent may call with at `now`: never revoked, or rotating with grace left
        (the rule of `ClusterToken.accepted_at`, in the database)."""
        return self.filter(models.Q(revoked_at__isnull=True) | models.Q(revoked_at__gt=now))


class ClusterToken(models.Model):
    """What a cluster's gateway agents authenticate with. The secret embeds the organization's
    id so the agent API finds the right schema, then the SHA-256 of the secret."""

    cluster = models.ForeignKey(GatewayCluster, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=32)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # When the token stops (or stopped) working: in the future while a rotated token's grace
    # period runs, so its gateways can move to the new secret.
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ClusterTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}...)"

    def accepted_at(self, now: datetime) -> bool:
        """Whether an agent may call with it at `now`: never revoked, or rotating with grace left."""
        return self.revoked_at is None or self.revoked_at > now

    def status_at(self, now: datetime) -> str:
        """active; rotating (replaced, still accepted until `revoked_at`); or revoked."""
        if self.revoked_at is None:
            return "active"
        return "rotating" if self.accepted_at(now) else "revoked"


class SnapshotSection(models.Model):
    """One top-level part of a snapshot document (the routes, the consumers...), stored once by
    the SHA-256 of its canonical JSON. A change to one route stores a new routes section and
    reuses every other section, so history costs little even with 10,000 consumers."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    content = models.TextField()  # canonical JSON, kept as text so its bytes are hashed as stored

    def __str__(self) -> str:
        return self.sha256


class ConfigSnapshot(models.Model):
    """An immutable, versioned compile of a cluster's whole catalog
    (`gateway_agent.protocol.Snapshot`): its document is the sections, assembled."""

    cluster = models.ForeignKey(GatewayCluster, on_delete=models.CASCADE, related_name="snapshots")
    version = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)  # of the whole document's canonical JSON
    sections = models.JSONField()  # top-level key -> SnapshotSection sha256
    # Sections stored in shards of entity ids (the consumers): key -> {shard index: the
    # SnapshotSection sha256 of its entities}. Their `sections` hash is of the assembled section,
    # which is not stored whole: a write stores only the shard it changed.
    shards = models.JSONField(default=dict, blank=True)
    author = models.CharField(max_length=254, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["cluster", "version"], name="snapshot_version_unique")]

    def __str__(self) -> str:
        return f"{self.cluster_id} v{self.version}"


class GatewayInstance(models.Model):
    """A gateway (agent and HAProxy) that registered with a cluster token. Its live status
    (heartbeats, applied version, last error) is in Redis with a TTL, not here."""

    cluster = models.ForeignKey(GatewayCluster, on_delete=models.CASCADE, related_name="instances")
    instance_id = models.UUIDField(unique=True)
    hostname = models.CharField(max_length=253)
    agent_version = models.CharField(max_length=50)
    haproxy_version = models.CharField(max_length=50, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    token = models.ForeignKey(ClusterToken, on_delete=models.SET_NULL, null=True, related_name="+")
    # The address the control plane saw it register from (behind trusted proxies: the client's).
    address = models.GenericIPAddressField(null=True, blank=True)
    registered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.hostname} ({self.instance_id})"
