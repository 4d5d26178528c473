"""Semi-managed deployments into a customer's AWS account, in the organization's own schema: the
connection (the role we may assume, with the organization's ExternalId, and the state of its
latest verification), the EKS clusters last listed in each region, and each gateway deployment
with its ordered step log. Assumed-role credentials are never stored.

Nothing here waits on AWS or Kubernetes in a request: a request records what is wanted and a
task does it, writing its progress here for the API to answer when polled."""

from __future__ import annotations

from django.db import models

from core.encryption import decrypt_secret, encrypt_secret


class AwsConnection(models.Model):
    """One per organization. The ExternalId is unguessable, stored encrypted (core.encryption: it
    is sent to STS on every assume-role) and shown in clear only to the organization's owners and
    admins, and only until a role is verified with it; the role trusts our account only with it.

    `role_arn`, `account_id` and `verified_at` are the role in use (verified); `status`,
    `requested_role_arn` and `message` are the latest verification's, which runs in a task: a
    role that fails to verify leaves the one in use as it was."""

    class Status(models.TextChoices):
        NOT_CONNECTED = "not_connected"
        VERIFYING = "verifying"
        VERIFIED = "verified"
        FAILED = "failed"

    external_id_ciphertext = models.TextField()
    role_arn = models.CharField(max_length=2048, blank=True)
    account_id = models.CharField(max_length=12, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NOT_CONNECTED)
    requested_role_arn = models.CharField(max_length=2048, blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.role_arn or "not connected"

    @property
    def external_id(self) -> str:
        return decrypt_secret(self.external_id_ciphertext)

    @external_id.setter
    def external_id(self, value: str) -> None:
        self.external_id_ciphertext = encrypt_secret(value)


class EksClusterListing(models.Model):
    """The EKS clusters the connected role sees in one region, as a task last listed them."""

    class Status(models.TextChoices):
        LISTING = "listing"
        LISTED = "listed"
        FAILED = "failed"

    region = models.CharField(max_length=32, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.LISTING)
    clusters = models.JSONField(default=list)
    message = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    requested_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"EKS clusters in {self.region} ({self.status})"


class GatewayDeployment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        TORN_DOWN = "torn_down"

    cluster = models.ForeignKey(
        "gateways.GatewayCluster", on_delete=models.CASCADE, related_name="deployments"
    )
    region = models.CharField(max_length=32)
    eks_cluster = models.CharField(max_length=100)
    namespace = models.CharField(max_length=63)
    replicas = models.PositiveSmallIntegerField(default=2)
    max_replicas = models.PositiveSmallIntegerField(default=6)
    cpu = models.CharField(max_length=16, default="250m")
    memory = models.CharField(max_length=16, default="256Mi")
    upstream_cidrs = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    operation = models.CharField(max_length=16, default="deploy")  # deploy (also upgrade, scale), teardown
    image = models.CharField(max_length=255, blank=True)  # the gateway image last applied
    load_balancer_hostname = models.CharField(max_length=255, blank=True)
    eks_endpoint = models.CharField(max_length=255, blank=True)
    eks_ca_data = models.TextField(blank=True)
    token_id = models.BigIntegerField(null=True, blank=True)  # the cluster token the gateways use
    hosted = models.BooleanField(default=False)  # in our own EKS, not the customer's account
    created_eks_cluster = models.BooleanField(default=False)  # we made it (and may delete it)
    delete_eks_cluster = models.BooleanField(default=False)  # asked for with the teardown
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["eks_cluster", "region", "namespace"],
                condition=~models.Q(status="torn_down"),
                name="one_live_deployment_per_namespace",
            )
        ]

    def __str__(self) -> str:
        return f"{self.eks_cluster}/{self.namespace} ({self.status})"


class DeploymentStep(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    deployment = models.ForeignKey(GatewayDeployment, on_delete=models.CASCADE, related_name="steps")
    operation = models.CharField(max_length=16)
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}: {self.status}"
