"""Billing state, in the public schema: one account per organization (its plan, its Stripe
customer and subscription, its quota), the invoices it was sent, the usage reported to Stripe per
hour, and the Stripe events already handled. Every row names its organization; endpoints filter
on it, so no lookup crosses organizations."""

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
    is sent, so a run that died half way sends exactly the same event again."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    hour = models.DateTimeField()
    calls = models.BigIntegerField()
    revision = models.PositiveIntegerField(default=0)
    identifier = models.CharField(max_length=100, unique=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "hour"], name="meter_report_hour")]

    def __str__(self) -> str:
        return f"{self.identifier}: {self.calls}"


class StripeEvent(models.Model):
    """A webhook event handled: delivered again, it changes nothing."""

    event_id = models.CharField(max_length=100, primary_key=True)
    type = models.CharField(max_length=100)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.event_id} ({self.type})"
