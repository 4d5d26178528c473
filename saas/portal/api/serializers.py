"""The team's portal API: input validators apart from the output shapes."""

from typing import Any

from rest_framework import serializers

from core.api.validation import InputValidator, StrictCharField

from ..models import AuthType, ProductVersion, SignupMode

HEX_COLOUR = r"^#[0-9a-fA-F]{6}$"


class PortalSettingsInput(InputValidator):
    enabled = serializers.BooleanField(required=False)
    title = StrictCharField(required=False, min_length=1, max_length=100)
    logo_url = serializers.URLField(required=False, allow_blank=True, max_length=500)
    primary_color = serializers.RegexField(HEX_COLOUR, required=False, help_text="#rrggbb")
    signup_mode = serializers.ChoiceField(SignupMode.choices, required=False)
    custom_host = StrictCharField(required=False, allow_blank=True, max_length=253)

    def validate_custom_host(self, value: str) -> str:
        return value.strip().lower().rstrip(".")

    def validate_logo_url(self, value: str) -> str:
        if value and not value.startswith("https://"):
            raise serializers.ValidationError("The logo's address starts with https://.")
        return value


class PortalSettingsOutput(serializers.Serializer):
    enabled = serializers.BooleanField()
    title = serializers.CharField()
    logo_url = serializers.CharField()
    primary_color = serializers.CharField()
    signup_mode = serializers.ChoiceField(SignupMode.choices)
    custom_host = serializers.CharField()
    url = serializers.CharField(help_text="Where developers find the portal")


class ProductInput(InputValidator):
    name = StrictCharField(max_length=100)
    slug = serializers.SlugField(max_length=60, required=False)
    description = StrictCharField(required=False, allow_blank=True, max_length=50_000, trim_whitespace=False)
    auth_type = serializers.ChoiceField(AuthType.choices, required=False)
    published = serializers.BooleanField(required=False)


class ProductPatch(ProductInput):
    name = StrictCharField(max_length=100, required=False)


class VersionInput(InputValidator):
    name = StrictCharField(max_length=30)
    status = serializers.ChoiceField(ProductVersion.STATUSES, required=False, default=ProductVersion.ACTIVE)
    cluster_id = serializers.IntegerField(min_value=1)
    route_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=1000
    )
    service = StrictCharField(
        required=False,
        max_length=100,
        help_text="Cover every route of this service (an earlier OpenAPI import)",
    )
    openapi = serializers.JSONField(
        required=False, help_text="The OpenAPI 3 document: an object, or its JSON or YAML text"
    )
    gateway_url = serializers.URLField(
        required=False, allow_blank=True, max_length=300, help_text="Where developers call this version"
    )


class PlanInput(InputValidator):
    name = StrictCharField(max_length=50)
    description = StrictCharField(required=False, allow_blank=True, max_length=300)
    limit_count = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=10**9)
    time_window = serializers.IntegerField(required=False, allow_null=True, help_text="1, 60, 3600 or 86400")


class PlanOutput(serializers.Serializer):
    class Meta:
        ref_name = "PortalPlanOutput"  # billing has a PlanOutput of its own

    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    limit_count = serializers.IntegerField(allow_null=True)
    time_window = serializers.IntegerField(allow_null=True)


class VersionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.ChoiceField(ProductVersion.STATUSES)
    cluster_id = serializers.IntegerField()
    route_ids = serializers.ListField(child=serializers.IntegerField())
    has_openapi = serializers.BooleanField()
    gateway_url = serializers.CharField()
    subscriptions = serializers.IntegerField()


class ProductOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    description = serializers.CharField()
    auth_type = serializers.ChoiceField(AuthType.choices)
    published = serializers.BooleanField()
    versions = VersionOutput(many=True)
    plans = PlanOutput(many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class SubscriptionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    product = serializers.CharField()
    product_id = serializers.IntegerField()
    version = serializers.CharField()
    version_id = serializers.IntegerField()
    plan = serializers.CharField()
    plan_id = serializers.IntegerField()


class ApplicationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    status = serializers.ChoiceField(["active", "suspended"])
    developer = serializers.EmailField()
    key_prefix = serializers.CharField()
    key_created_at = serializers.DateTimeField(allow_null=True)
    jwt_key = serializers.CharField(allow_null=True)
    jwt_algorithm = serializers.CharField(allow_null=True)
    subscriptions = SubscriptionOutput(many=True)
    created_at = serializers.DateTimeField()


class DeveloperOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()
    status = serializers.ChoiceField(["pending", "active", "rejected", "suspended"])
    email_verified = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    last_login = serializers.DateTimeField(allow_null=True)
    applications = ApplicationOutput(many=True)


class InvitationInput(InputValidator):
    email = serializers.EmailField()


class InvitationOutput(serializers.Serializer):
    class Meta:
        ref_name = "PortalInvitationOutput"  # tenants has one for members

    email = serializers.EmailField()
    link = serializers.CharField()


class StatusInput(InputValidator):
    status = serializers.ChoiceField(["active", "suspended"])


def as_data(serializer: type[serializers.Serializer], value: Any, many: bool = False) -> Any:
    return serializer(value, many=many).data
