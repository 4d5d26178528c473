"""Input validators (requests) apart from output serializers (responses)."""

from rest_framework import serializers

from core.api.validation import InputValidator, StrictCharField

# --- input -----------------------------------------------------------------------------------


class PasswordResetRequestInput(InputValidator):
    email = serializers.EmailField(max_length=254)


class PasswordResetLinkInput(InputValidator):
    uid = StrictCharField(max_length=64, help_text="The part of the link after /reset/")
    token = StrictCharField(max_length=128, help_text="The last part of the link")


class PasswordResetInput(PasswordResetLinkInput):
    password = StrictCharField(max_length=128, trim_whitespace=False, write_only=True)


class PasswordChangeInput(InputValidator):
    current_password = StrictCharField(max_length=128, trim_whitespace=False, write_only=True)
    new_password = StrictCharField(max_length=128, trim_whitespace=False, write_only=True)


class EmailChangeInput(InputValidator):
    email = serializers.EmailField(max_length=254, help_text="The new address")
    password = StrictCharField(
        max_length=128, trim_whitespace=False, write_only=True, help_text="The current password"
    )


class EmailTokenInput(InputValidator):
    token = StrictCharField(max_length=600, help_text="The last part of the emailed link")


# --- output ----------------------------------------------------------------------------------


class DetailOutput(serializers.Serializer):
    detail = serializers.CharField()


class ResetLinkOutput(serializers.Serializer):
    email = serializers.EmailField(help_text="The account the link resets")


class SessionsEndedOutput(serializers.Serializer):
    detail = serializers.CharField()
    sessions_ended = serializers.IntegerField()


class EmailChangeOutput(serializers.Serializer):
    detail = serializers.CharField()
    pending_email = serializers.EmailField()


class EmailVerifiedOutput(serializers.Serializer):
    detail = serializers.CharField()
    email = serializers.EmailField(help_text="The account's address now")


class AccountOutput(serializers.Serializer):
    email = serializers.EmailField()
    name = serializers.CharField()
    email_verified = serializers.BooleanField()
    pending_email = serializers.CharField(
        help_text="The address a change was asked for, until its link is followed; empty if none"
    )


class SessionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    device = serializers.CharField(help_text="Browser and system, read from the User-Agent")
    user_agent = serializers.CharField()
    ip_address = serializers.IPAddressField(allow_null=True)
    method = serializers.CharField(help_text="How it signed in: password, signup, invitation")
    signed_in_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField(help_text="Updated at most once a minute")
    current = serializers.BooleanField(help_text="The session making this request")
