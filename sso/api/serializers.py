"""Input validators (requests) apart from output serializers (responses)."""

from rest_framework import serializers

from core.api.validation import InputValidator, StrictCharField
from tenants.roles import Role

# --- input -----------------------------------------------------------------------------------


class RoleRuleInput(InputValidator):
    value = StrictCharField(max_length=200, help_text="A value of the role claim (a group's name)")
    # Every role, for one enum in the OpenAPI document; the service refuses owner, naming the field.
    role = serializers.ChoiceField(choices=Role.choices, help_text="Any role but owner")


class SsoConfigurationInput(InputValidator):
    issuer = StrictCharField(
        max_length=500,
        help_text="The provider's issuer URL; its discovery document is at "
        "<issuer>/.well-known/openid-configuration",
    )
    client_id = StrictCharField(max_length=255)
    client_secret = StrictCharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        write_only=True,
        help_text="Required the first time; left out or blank, the saved one is kept",
    )
    allowed_domains = serializers.ListField(
        child=StrictCharField(max_length=253),
        max_length=50,
        help_text="Email domains whose people sign in through this provider (example.com)",
    )
    default_role = serializers.ChoiceField(
        choices=Role.choices, help_text="The role of someone who joins when no rule gives one (not owner)"
    )
    role_claim = StrictCharField(
        max_length=100,
        required=False,
        allow_blank=True,
        default="",
        help_text="The claim the rules read, for example groups; blank: roles are set in the console",
    )
    role_mapping = RoleRuleInput(many=True, required=False, default=list)
    sso_only = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Members other than owners may sign in only through the provider",
    )


class EmailInput(InputValidator):
    email = serializers.EmailField(max_length=254)


class CallbackInput(InputValidator):
    state = StrictCharField(max_length=200, help_text="The `state` the provider sent back")
    code = StrictCharField(max_length=2000, required=False, allow_blank=True, default="")
    error = StrictCharField(
        max_length=200, required=False, allow_blank=True, default="", help_text="The provider's error, if any"
    )
    error_description = StrictCharField(max_length=2000, required=False, allow_blank=True, default="")
    iss = StrictCharField(
        max_length=500, required=False, allow_blank=True, default="", help_text="RFC 9207: who answered"
    )


class LinkInput(InputValidator):
    token = StrictCharField(max_length=1000, help_text="The token of the emailed link")


# --- output ----------------------------------------------------------------------------------


class RoleRuleOutput(serializers.Serializer):
    value = serializers.CharField()
    role = serializers.CharField()


class SsoConfigurationOutput(serializers.Serializer):
    configured = serializers.BooleanField()
    redirect_uri = serializers.CharField(help_text="Register this at the provider as the redirect URI")
    issuer = serializers.CharField()
    client_id = serializers.CharField()
    client_secret_set = serializers.BooleanField()
    allowed_domains = serializers.ListField(child=serializers.CharField())
    default_role = serializers.CharField()
    role_claim = serializers.CharField()
    role_mapping = RoleRuleOutput(many=True)
    sso_only = serializers.BooleanField()
    updated_at = serializers.DateTimeField(allow_null=True)


class DiscoveryOutput(serializers.Serializer):
    organization_name = serializers.CharField()
    organization_slug = serializers.CharField()


class StartOutput(serializers.Serializer):
    redirect_url = serializers.CharField(help_text="Send the browser here: the provider's sign-in")


class SignedInOrganizationOutput(serializers.Serializer):
    name = serializers.CharField()
    slug = serializers.CharField()
    role = serializers.CharField()


class SignedInOutput(serializers.Serializer):
    email = serializers.EmailField()
    organization = SignedInOrganizationOutput()
    joined = serializers.BooleanField(help_text="Whether this sign-in made them a member")
    csrf_token = serializers.CharField()


class LinkSentOutput(serializers.Serializer):
    detail = serializers.CharField()
    link_sent_to = serializers.EmailField(help_text="The account's address the link was sent to")


class LinkedOutput(serializers.Serializer):
    detail = serializers.CharField()
    organization_name = serializers.CharField()
