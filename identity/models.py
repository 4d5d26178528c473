"""Sign-in sessions, email verification and two-factor sign-in, in the public schema beside the
users.

Models hold data; workflows are in services.py."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from tenants.models import Organization


class UserSession(models.Model):
    """A signed-in browser: one row per Django session, made at sign-in and refreshed at most once
    a minute by identity.middleware. Ending it deletes the Django session too."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The key of the session in Django's session store; never shown, the API names rows by id.
    session_key = models.CharField(max_length=40, unique=True)
    # How the person proved who they are: password, signup, invitation, sso.
    method = models.CharField(max_length=16, default="password")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    signed_in_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        indexes = [models.Index(fields=["user", "-last_seen_at"], name="identity_session_user_seen")]

    def __str__(self) -> str:
        return f"session {self.pk} of user {self.user_id}"


class EmailVerification(models.Model):
    """Which address of the user is proven theirs, and the change they asked for, if any. The
    account's address is verified while `verified_email` equals it."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    verified_email = models.EmailField(max_length=254, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    # The address a change of email was asked for, until its link is followed (shown only: the
    # signed link itself carries the address).
    pending_email = models.EmailField(max_length=254, blank=True)

    def __str__(self) -> str:
        return f"email verification of user {self.user_id}"


class MfaDevice(models.Model):
    """A user's authenticator app (TOTP, RFC 6238). Made when enrolment starts; two-factor
    sign-in is on once a first code confirmed it (`confirmed_at`)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The shared secret (base32), encrypted at rest (core.encryption): shown once, at enrolment.
    secret_ciphertext = models.TextField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # The time step (30 s) of the last code accepted: it, and every code before it, are refused,
    # so a code seen over a shoulder or in a log cannot be used again.
    last_used_step = models.BigIntegerField(default=0)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"authenticator of user {self.user_id}"


class RecoveryCode(models.Model):
    """One of the single-use codes that sign in when the authenticator is lost; stored hashed."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "code_hash"], name="identity_recovery_code_unique")
        ]

    def __str__(self) -> str:
        return f"recovery code {self.pk} of user {self.user_id}"


class OrganizationMfaPolicy(models.Model):
    """Whether an organization requires two-factor sign-in of its members (owners set it)."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="+")
    require_mfa = models.BooleanField(default=False)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"MFA policy of organization {self.organization_id}"
