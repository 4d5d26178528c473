"""The developer portal's data, in each organization's own schema: the portal's settings, the API
products it publishes (versions, plans), and the outside developers who sign up there with their
applications and subscriptions. Developers are a table of their own, never users of the console."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import IntegrityError, models, transaction

from core.errors import InvalidInput


def save_unique(instance: models.Model, field: str, message: str) -> None:
    """Save, a clash with a unique constraint refused as bad input on `field` (400), not a 500."""
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction goes on
            instance.save()
    except IntegrityError:
        raise InvalidInput.field(field, message) from None


class SignupMode(models.TextChoices):
    OPEN = "open", "Open: anyone with a verified email"
    APPROVAL = "approval", "Anyone may apply; the team approves"
    INVITATION = "invitation", "By invitation only"


class PortalSettings(models.Model):
    """The organization's portal (one row)."""

    enabled = models.BooleanField(default=False)
    title = models.CharField(max_length=100, default="Developer portal")
    logo_url = models.URLField(max_length=500, blank=True)
    primary_color = models.CharField(max_length=7, default="#1c5ab4")
    signup_mode = models.CharField(max_length=12, choices=SignupMode.choices, default=SignupMode.APPROVAL)
    # Served at this host name too (its DNS pointed at the control plane), besides /portal/<slug>/.
    custom_host = models.CharField(max_length=253, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.title


class AuthType(models.TextChoices):
    KEY_AUTH = "key-auth", "API key"
    JWT_AUTH = "jwt-auth", "JWT signed with the application's key"


class ApiProduct(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True, max_length=50_000)  # Markdown
    auth_type = models.CharField(max_length=10, choices=AuthType.choices, default=AuthType.KEY_AUTH)
    published = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ProductVersion(models.Model):
    """One version of a product: the routes of one cluster it covers and its OpenAPI document."""

    ACTIVE = "active"
    DEPRECATED = "deprecated"
    STATUSES = [(ACTIVE, "Active"), (DEPRECATED, "Deprecated")]

    product = models.ForeignKey(ApiProduct, on_delete=models.CASCADE, related_name="versions")
    name = models.CharField(max_length=30)  # v1, v2, 2024-06 ...
    status = models.CharField(max_length=12, choices=STATUSES, default=ACTIVE)
    cluster = models.ForeignKey("gateways.GatewayCluster", on_delete=models.CASCADE, related_name="+")
    route_ids = models.JSONField(default=list)
    openapi = models.JSONField(null=True, blank=True)
    # Where developers call this version (the cluster's gateways, as their clients reach them):
    # the documentation's servers and its try-it panel use it.
    gateway_url = models.URLField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["product_id", "id"]
        constraints = [models.UniqueConstraint(fields=["product", "name"], name="portal_version_unique")]

    def __str__(self) -> str:
        return f"{self.product.name} {self.name}"

    @property
    def access_label(self) -> str:
        """The consumer label the gateway lets through to this version's routes."""
        return f"portal-version-{self.pk}"


class ProductPlan(models.Model):
    """What a subscription allows: at most `limit_count` calls per `time_window` seconds (none:
    unlimited)."""

    product = models.ForeignKey(ApiProduct, on_delete=models.CASCADE, related_name="plans")
    name = models.CharField(max_length=50)
    description = models.CharField(max_length=300, blank=True)
    limit_count = models.PositiveIntegerField(null=True, blank=True)
    time_window = models.PositiveIntegerField(null=True, blank=True)  # 1, 60, 3600 or 86400

    class Meta:
        ordering = ["product_id", "id"]
        constraints = [models.UniqueConstraint(fields=["product", "name"], name="portal_plan_unique")]

    def __str__(self) -> str:
        return f"{self.product.name} {self.name}"


class DeveloperStatus(models.TextChoices):
    PENDING = "pending", "Waiting for approval"
    ACTIVE = "active", "Active"
    REJECTED = "rejected", "Rejected"
    SUSPENDED = "suspended", "Suspended"


class PortalDeveloper(AbstractBaseUser):
    """An outside developer of this organization's portal. Django's password hashing and reset
    tokens work on it; it is not AUTH_USER_MODEL, so it can never sign in to the console."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=10, choices=DeveloperStatus.choices, default=DeveloperStatus.PENDING)
    email_verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    objects = BaseUserManager["PortalDeveloper"]()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.email


class DeveloperInvitation(models.Model):
    email = models.EmailField()
    token_sha256 = models.CharField(max_length=64, unique=True)
    invited_by = models.CharField(max_length=254)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.email


class PortalSession(models.Model):
    """A signed-in browser of a developer; the cookie holds a secret of which only the digest is
    kept here."""

    developer = models.ForeignKey(PortalDeveloper, on_delete=models.CASCADE, related_name="sessions")
    key_sha256 = models.CharField(max_length=64, unique=True)
    csrf_token = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    user_agent = models.CharField(max_length=300, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    def __str__(self) -> str:
        return f"session {self.pk} of {self.developer_id}"


class Application(models.Model):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    STATUSES = [(ACTIVE, "Active"), (SUSPENDED, "Suspended")]

    developer = models.ForeignKey(PortalDeveloper, on_delete=models.CASCADE, related_name="applications")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=STATUSES, default=ACTIVE)
    # The API key, encrypted (core.encryption) as the catalog's secrets are: a subscription in a
    # cluster the application had no consumer in yet needs the key to give it one.
    key_ciphertext = models.TextField(blank=True)
    key_prefix = models.CharField(max_length=12, blank=True)
    key_created_at = models.DateTimeField(null=True, blank=True)
    jwt_algorithm = models.CharField(max_length=8, blank=True)
    jwt_public_key_pem = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["developer", "name"], name="portal_app_name_unique")]

    def __str__(self) -> str:
        return self.name

    @property
    def consumer_username(self) -> str:
        return f"portal-app-{self.pk}"

    @property
    def jwt_key(self) -> str:
        """The `key` claim the application's tokens carry."""
        return f"portal-app-{self.pk}"


class Subscription(models.Model):
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="subscriptions")
    version = models.ForeignKey(ProductVersion, on_delete=models.CASCADE, related_name="subscriptions")
    plan = models.ForeignKey(ProductPlan, on_delete=models.PROTECT, related_name="subscriptions")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["application", "version"], name="portal_subscription_unique")
        ]

    def __str__(self) -> str:
        return f"subscription {self.pk}"


class ApplicationConsumer(models.Model):
    """The catalog consumer that stands for an application in one cluster."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="consumers")
    cluster = models.ForeignKey("gateways.GatewayCluster", on_delete=models.CASCADE, related_name="+")
    consumer_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["application", "cluster"], name="portal_app_cluster_unique")
        ]

    def __str__(self) -> str:
        return f"consumer {self.consumer_id} of application {self.application_id}"


class RouteCors(models.Model):
    """The `cors` the portal wrote on a route its products cover, so that the documentation's
    try-it panel can call it from the portal; undone when no version covers the route."""

    cluster = models.ForeignKey("gateways.GatewayCluster", on_delete=models.CASCADE, related_name="+")
    route_id = models.BigIntegerField()
    # The route's own cors before the portal's (None: it had none, and gets none back).
    own = models.JSONField(null=True, blank=True)
    # What the portal wrote: while the route still holds it, `own` is the team's setting; a route
    # holding anything else has been edited since, and what it holds is the team's.
    written = models.JSONField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cluster", "route_id"], name="portal_route_cors_unique")
        ]

    def __str__(self) -> str:
        return f"cors of route {self.route_id}"
