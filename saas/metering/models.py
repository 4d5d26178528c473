"""Usage, in each organization's own schema: the batches already counted (so a batch delivered
twice is counted once) and per-minute rollups, the one source for billing and analytics. In the
public schema: the intake queue (batches accepted and not yet recorded) and its dead letters, and
each organization's calls per hour (what billing reads for every organization at once).

Rows name their cluster and route by id without a foreign key: usage outlives a deleted route
or cluster, because it was billed."""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Now


class UsageBatch(models.Model):
    batch_id = models.CharField(max_length=32, primary_key=True)
    cluster_id = models.BigIntegerField()
    instance_id = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    requests = models.BigIntegerField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["recorded_at"], name="usage_batch_recorded")]

    def __str__(self) -> str:
        return f"batch {self.batch_id} ({self.requests} requests)"


class UsageRollup(models.Model):
    """Requests of one route and consumer with one status in one UTC minute: a code the gateway
    counts one by one (gateway_agent.protocol.STATUS_CODES), or 0 with its class: the class's
    other codes."""

    cluster_id = models.BigIntegerField()
    minute = models.DateTimeField()
    route_id = models.BigIntegerField()  # 0: no route matched
    consumer = models.CharField(max_length=100, blank=True)  # "": anonymous
    status_class = models.CharField(max_length=3)
    status_code = models.PositiveSmallIntegerField(default=0)  # 0: not counted one by one
    requests = models.BigIntegerField(default=0)
    bytes_in = models.BigIntegerField(default=0)
    bytes_out = models.BigIntegerField(default=0)
    # Upstream answers per latency bucket (gateway_agent.protocol.LATENCY_BOUNDS_MS, then one for
    # anything slower), whatever their class: an exact histogram, summed like the counts.
    latency_ms_buckets = ArrayField(models.BigIntegerField(), default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["cluster_id", "minute", "route_id", "consumer", "status_class", "status_code"],
                name="usage_rollup_status_key",
            )
        ]
        # Billing sums a period; analytics read one cluster over a range; old months are
        # pruned by minute.
        indexes = [
            models.Index(fields=["minute"], name="usage_rollup_minute"),
            models.Index(fields=["cluster_id", "minute"], name="usage_rollup_cluster_minute"),
        ]

    def __str__(self) -> str:
        status = self.status_code or self.status_class
        return f"{self.minute:%Y-%m-%d %H:%M} route {self.route_id} {status}: {self.requests}"


# --- the intake queue, in the public schema -----------------------------------------------------
# One table for every organization (not one per schema): consumers take the oldest batches of all
# organizations with one query. Metering is a tenant app, so migration 0003 creates these two
# tables in the public schema only; queries find them there from any schema (django-tenants puts
# public on every search_path).


class UsageIntake(models.Model):
    """A batch an agent posted, accepted (202) and waiting for a consumer to record it: the
    organization's schema, the cluster, the batch as received (JSON, already validated)."""

    id = models.BigAutoField(primary_key=True)
    schema_name = models.CharField(max_length=63)
    cluster_id = models.BigIntegerField()
    batch = models.TextField()
    received_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"usage batch queued for {self.schema_name} at {self.received_at}"


class UsageDeadLetter(models.Model):
    """A queued batch a consumer could not record, and why: kept for an operator to look at and
    replay (`manage.py usage_dead_letters`), never dropped silently."""

    id = models.BigAutoField(primary_key=True)
    schema_name = models.CharField(max_length=63)
    cluster_id = models.BigIntegerField()
    batch = models.TextField()
    reason = models.TextField()
    received_at = models.DateTimeField()
    failed_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"dead usage batch of {self.schema_name}: {self.reason[:80]}"


class HourlyCalls(models.Model):
    """An organization's calls in one UTC hour (by its start), written in the transaction that
    writes its rollups, so it always equals their sum. Billing's periodic jobs read every
    organization's periods from this one table instead of visiting thousands of schemas."""

    id = models.BigAutoField(primary_key=True)
    schema_name = models.CharField(max_length=63)
    hour = models.DateTimeField()
    calls = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["schema_name", "hour"], name="hourly_calls_key")]

    def __str__(self) -> str:
        return f"{self.schema_name} {self.hour:%Y-%m-%d %H}h: {self.calls}"
