"""Input validators (requests) apart from output serializers (responses)."""

from typing import Any

from rest_framework import serializers

from core.api.validation import InputValidator, StrictCharField
from tenants.models import ApiToken, AuditEntry, Invitation, Membership, Organization, User
from tenants.roles import Role

# --- input -----------------------------------------------------------------------------------


class SignupInput(InputValidator):
    email = serializers.EmailField(max_length=254)
    password = StrictCharField(max_length=128, trim_whitespace=False, write_only=True)
    name = StrictCharField(max_length=150, required=False, allow_blank=True, default="")
    organization_name = StrictCharField(max_length=100, required=False)


class LoginInput(InputValidator):
    email = serializers.EmailField(max_length=254)
    password = StrictCharField(max_length=128, trim_whitespace=False, write_only=True)


class OrganizationCreateInput(InputValidator):
    name = StrictCharField(max_length=100)
    slug = StrictCharField(max_length=50, required=False)


class OrganizationUpdateInput(InputValidator):
    name = StrictCharField(max_length=100, required=False)
    slug = StrictCharField(max_length=50, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Give a new name or slug.")
        return attrs


class InvitationCreateInput(InputValidator):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationTokenInput(InputValidator):
    token = StrictCharField(max_length=200)


class InvitationAcceptInput(InputValidator):
    token = StrictCharField(max_length=200)
    password = StrictCharField(max_length=128, trim_whitespace=False, required=False, write_only=True)
    name = StrictCharField(max_length=150, required=False, allow_blank=True, default="")


class MemberUpdateInput(InputValidator):
    role = serializers.ChoiceField(choices=Role.choices)


class ApiTokenCreateInput(InputValidator):
    name = StrictCharField(max_length=100)
    role_ceiling = serializers.ChoiceField(
        choices=Role.choices,
        required=False,
        help_text="The most the token may do (never more than your role). Default: viewer "
        "(billing for a billing member).",
    )
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="When it stops working; none: until revoked"
    )


class AuditQuery(InputValidator):
    action = StrictCharField(max_length=64, required=False)
    actor = serializers.EmailField(max_length=254, required=False)
    target_type = StrictCharField(max_length=64, required=False)
    target_id = StrictCharField(max_length=64, required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    search = StrictCharField(max_length=200, required=False, allow_blank=True)
    ordering = StrictCharField(max_length=64, required=False, allow_blank=True)
    page = serializers.IntegerField(min_value=1, required=False)
    page_size = serializers.IntegerField(min_value=1, max_value=200, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "since" in attrs and "until" in attrs and attrs["until"] <= attrs["since"]:
            raise serializers.ValidationError({"until": ["Must be after since."]})
        return attrs


# --- output ----------------------------------------------------------------------------------


class UserOutput(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ["id", "email", "name", "date_joined"]


class OrganizationOutput(serializers.ModelSerializer[Organization]):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "created_at", "role"]

    def get_role(self, organization: Organization) -> str | None:
        roles: dict[int, str] = self.context.get("roles", {})
        return roles.get(organization.id)


class MeOutput(serializers.Serializer[User]):
    user = UserOutput(source="*")
    organizations = serializers.SerializerMethodField()

    def get_organizations(self, user: User) -> list[dict[str, Any]]:
        return [
            {"id": org.id, "name": org.name, "slug": org.slug, "role": role}
            for org, role in self.context["organizations"]
        ]


class MembershipOutput(serializers.ModelSerializer[Membership]):
    user = UserOutput()
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.name", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "name", "user", "role", "created_at"]


class InvitationOutput(serializers.ModelSerializer[Invitation]):
    invited_by = serializers.EmailField(source="invited_by.email", default=None)
    status = serializers.CharField()

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "status", "invited_by", "created_at", "expires_at", "accepted_at"]


class InvitationPreviewOutput(serializers.ModelSerializer[Invitation]):
    organization = serializers.SerializerMethodField()
    invited_by = serializers.EmailField(source="invited_by.email", default=None)
    status = serializers.CharField()
    account_exists = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields = ["organization", "email", "role", "status", "invited_by", "expires_at", "account_exists"]

    def get_organization(self, invitation: Invitation) -> dict[str, str]:
        return {"name": invitation.organization.name, "slug": invitation.organization.slug}

    def get_account_exists(self, invitation: Invitation) -> bool:
        return User.objects.filter(email__iexact=invitation.email).exists()


class ApiTokenOutput(serializers.ModelSerializer[ApiToken]):
    user = serializers.EmailField(source="user.email")

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "user",
            "prefix",
            "role_ceiling",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]


class ApiTokenCreatedOutput(ApiTokenOutput):
    token = serializers.SerializerMethodField(help_text="The secret. Shown only in this response.")

    class Meta(ApiTokenOutput.Meta):
        fields = [*ApiTokenOutput.Meta.fields, "token"]

    def get_token(self, token: ApiToken) -> str:
        return str(self.context["secret"])


class AuditEntryOutput(serializers.ModelSerializer[AuditEntry]):
    actor = serializers.CharField(source="actor_email")
    api_token = serializers.CharField(source="api_token.prefix", default=None)

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "created_at",
            "actor",
            "api_token",
            "action",
            "target_type",
            "target_id",
            "target_repr",
            "changes",
            "ip_address",
        ]
