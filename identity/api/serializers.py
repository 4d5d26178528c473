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


class MfaCodeInput(InputValidator):
    code = StrictCharField(
        max_length=32, help_text="The 6-digit code of the authenticator app, or a recovery code"
    )


class MfaDisableInput(MfaCodeInput):
    password = StrictCharField(
        max_length=128, trim_whitespace=False, write_only=True, help_text="The current password"
    )


class MfaPolicyInput(InputValidator):
    require_mfa = serializers.BooleanField(help_text="Every member must sign in with a second factor")


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


class MfaRequiredOutput(serializers.Serializer):
    mfa_required = serializers.BooleanField(help_text="Always true: the password was right, a code is due")
    detail = serializers.CharField()


class MfaStatusOutput(serializers.Serializer):
    enabled = serializers.BooleanField()
    enabled_at = serializers.DateTimeField(allow_null=True)
    recovery_codes_left = serializers.IntegerField()
    required_by = serializers.ListField(
        child=serializers.CharField(), help_text="My organizations that require two-factor sign-in"
    )
    setup_required = serializers.BooleanField(
        help_text="Required and not on: nothing else works until it is set up"
    )


class MfaEnrolmentOutput(serializers.Serializer):
    secret = serializers.CharField(help_text="The key to type in when the QR code cannot be scanned")
    otpauth_uri = serializers.CharField(help_text="What the QR code holds")
    qr_code = serializers.CharField(help_text="The QR code: an SVG image as a data: URI")


class RecoveryCodesOutput(serializers.Serializer):
    detail = serializers.CharField()
    recovery_codes = serializers.ListField(
        child=serializers.CharField(), help_text="Shown this once; each signs in once"
    )


class MfaPolicyOutput(serializers.Serializer):
    require_mfa = serializers.BooleanField()
    members_without_mfa = serializers.IntegerField(
        help_text="Members who have not turned two-factor sign-in on (asked at their next sign-in)"
    )
