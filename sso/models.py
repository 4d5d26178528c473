"""An organization's single sign-on: the OpenID Connect provider its people sign in with, the
email domains it answers for, and how the provider's claims map to roles. In the public schema,
beside the organizations and users: sign-in happens before any organization is chosen.

Models hold data; the rules are in services.py."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from core.encryption import decrypt_secret, encrypt_secret
from tenants.models import Organization
from tenants.roles import Role


class SsoConfiguration(models.Model):
    """One per organization that has single sign-on."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="+")
    # The provider's issuer identifier; its discovery document is at
    # <issuer>/.well-known/openid-configuration and must name this same issuer.
    issuer = models.URLField(max_length=500)
    client_id = models.CharField(max_length=255)
    # Encrypted at rest (core.encryption): sent to the provider's token endpoint at every sign-in.
    client_secret_ciphertext = models.TextField()
    # The role of someone who joins at their first sign-in when no mapping rule gives one.
    default_role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    # The claim (say `groups`) whose values map to roles, and the rules: [{"value", "role"}], the
    # first that matches wins. Empty: roles are managed in the console only.
    role_claim = models.CharField(max_length=100, blank=True)
    role_mapping = models.JSONField(default=list, blank=True)
    # Members other than owners may sign in only through the provider (owners keep their
    # password: the way back in when the provider fails or is misconfigured).
    sso_only = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"SSO of {self.organization_id} with {self.issuer}"

    @property
    def client_secret(self) -> str:
        return decrypt_secret(self.client_secret_ciphertext)

    @client_secret.setter
    def client_secret(self, value: str) -> None:
        self.client_secret_ciphertext = encrypt_secret(value)


class SsoDomain(models.Model):
    """An email domain whose people sign in through an organization's provider. A domain belongs
    to one organization at most: that is how the sign-in page finds the organization."""

    configuration = models.ForeignKey(SsoConfiguration, on_delete=models.CASCADE, related_name="domains")
    # Lowercase, without a trailing dot.
    domain = models.CharField(max_length=253, unique=True)

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain


class SsoIdentity(models.Model):
    """Who a provider's subject is here: later sign-ins find the user by the ID token's `sub`,
    which the provider never reassigns, rather than by an email address, which may change."""

    configuration = models.ForeignKey(SsoConfiguration, on_delete=models.CASCADE, related_name="+")
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["configuration", "subject"], name="sso_identity_subject_unique")
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.configuration_id}"
