"""Billing state, in the public schema: one account per organization (its plan, its Stripe
customer and subscription, its quota), the invoices it was sent, the usage reported to Stripe per
hour, what each closed period was billed and the late usage carried from it, and the Stripe
events already handled. Every row names its organization; endpoints filter on it, so no lookup
crosses organizations."""

from datetime import UTC, timedelta

from django.db import models

from tenants.models import Organization


class BillingAccount(models.Model):
    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="billing")
    plan = models.CharField(max_length=40, default="free")
    stripe_customer_id = models.CharField(max_length=100, blank=True, db_index=True)
    stripe_subscription_id = models.CharField(max_length=100, blank=True)
    subscription_status = models.CharField(max_length=40, blank=True)
    # The subscription's current period, when Stripe has one; else the UTC calendar month.
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    # When the subscription state applied was true at Stripe: an older event changes nothing.
    subscription_as_of = models.DateTimeField(null=True, blank=True)
    quota_exceeded = models.BooleanField(default=False)
    quota_resets_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.organization.slug}: {self.plan}"


class PlanChange(models.Model):
    """A plan changed while billing runs locally, with the period's calls at that moment. A
    period is billed at the plan held at its end, or at a plan left in it after its calls had
    passed the new plan's allowance, whichever costs more: a downgrade cannot unbill the calls
    already made, and a change made by mistake and changed back costs nothing."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="plan_changes")
    changed_at = models.DateTimeField()
    from_plan = models.CharField(max_length=40)
    to_plan = models.CharField(max_length=40)
    period_start = models.DateTimeField()
    calls = models.BigIntegerField()  # the period's calls when it changed

    class Meta:
        ordering = ["changed_at", "id"]
        indexes = [models.Index(fields=["organization", "changed_at"])]

    def __str__(self) -> str:
        return f"{self.from_plan} to {self.to_plan} at {self.changed_at:%Y-%m-%d %H:%M}"


class QuotaNotice(models.Model):
    """An allowance threshold (80, 100 %) already announced in a period: once each."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    period_start = models.DateTimeField()
    threshold = models.PositiveSmallIntegerField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period_start", "threshold"], name="quota_notice_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.threshold}% from {self.period_start:%Y-%m-%d}"


class Invoice(models.Model):
    class Source(models.TextChoices):
        STRIPE = "stripe"
        LOCAL = "local"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invoices")
    source = models.CharField(max_length=10, choices=Source.choices)
    number = models.CharField(max_length=100)
    stripe_invoice_id = models.CharField(max_length=100, unique=True, null=True, blank=True)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    currency = models.CharField(max_length=3, default="usd")
    amount_due_minor = models.BigIntegerField(default=0)
    status = models.CharField(max_length=20)
    hosted_invoice_url = models.URLField(max_length=500, blank=True)
    invoice_pdf_url = models.URLField(max_length=500, blank=True)
    plan = models.CharField(max_length=40, blank=True)
    calls = models.BigIntegerField(default=0)
    lines = models.JSONField(default=list, blank=True)
    stripe_as_of = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period_start", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period_start"],
                condition=models.Q(source="local"),
                name="one_local_invoice_per_period",
            )
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.status})"


class MeterReport(models.Model):
    """The calls of one organization-hour as last reported to Stripe's meter. Stored before it
    is sent, so a run that died half way sends exactly the same event again. The event's value
    is `calls` (the hour's own) plus `late_calls` (late usage of a closed period carried into this
    hour); `delivered_*` is what Stripe last confirmed having."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    hour = models.DateTimeField()
    calls = models.BigIntegerField()
    late_calls = models.BigIntegerField(default=0)
    revision = models.PositiveIntegerField(default=0)
    identifier = models.CharField(max_length=100, unique=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_calls = models.BigIntegerField(default=0)
    delivered_revision = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "hour"], name="meter_report_hour")]

    def __str__(self) -> str:
        return f"{self.identifier}: {self.value}"

    @property
    def value(self) -> int:
        """The event's value: the hour's own calls and the late usage carried into it."""
        return self.calls + self.late_calls


class BilledPeriod(models.Model):
    """A closed period and the organization's own calls it was billed for: a local invoice's
    calls, or (Stripe) the hourly totals Stripe had when the period's invoice was finalized.
    Calls the rollups gain for it afterwards are late usage, measured against `calls`."""

    class Source(models.TextChoices):
        STRIPE = "stripe"
        LOCAL = "local"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="billed_periods")
    source = models.CharField(max_length=10, choices=Source.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    plan = models.CharField(max_length=40, blank=True)
    calls = models.BigIntegerField()
    closed_at = models.DateTimeField()

    class Meta:
        ordering = ["period_start"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "period_start"], name="billed_period_once")
        ]

    def __str__(self) -> str:
        return f"{self.label}: {self.calls} calls ({self.source})"

    @property
    def label(self) -> str:
        """`2026-10` for a calendar month (UTC), else its first day and its end."""
        start, end = self.period_start.astimezone(UTC), self.period_end.astimezone(UTC)
        month = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        following = (month + timedelta(days=32)).replace(day=1)
        if start == month and end == following:
            return f"{start:%Y-%m}"
        return f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"


class LateUsage(models.Model):
    """Calls of a closed period counted after it was billed, carried once into a later bill:
    a line of the next local invoice (`invoice`, priced at the closed period's plan), or part of
    a Stripe meter event in an hour of the open period (`meter_hour`, first in the hour's
    `meter_revision`). A Stripe carry whose hour's period closed before Stripe had it is voided
    and carried again."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="late_usage")
    billed_period = models.ForeignKey(BilledPeriod, on_delete=models.CASCADE, related_name="late_usage")
    sequence = models.PositiveIntegerField()
    calls = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    amount_minor = models.BigIntegerField(null=True, blank=True)  # local only: Stripe prices its own
    carried_at = models.DateTimeField()
    invoice = models.ForeignKey(
        Invoice, on_delete=models.SET_NULL, null=True, blank=True, related_name="late_usage"
    )
    meter_hour = models.DateTimeField(null=True, blank=True)
    meter_revision = models.PositiveIntegerField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["carried_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["billed_period", "sequence"], name="late_usage_carried_once")
        ]

    def __str__(self) -> str:
        return self.description

    @property
    def description(self) -> str:
        return f"Late usage from {self.billed_period.label}: {self.calls:,} calls"


class StripeEvent(models.Model):
    """A webhook event handled: delivered again, it changes nothing."""

    event_id = models.CharField(max_length=100, primary_key=True)
    type = models.CharField(max_length=100)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.event_id} ({self.type})"
