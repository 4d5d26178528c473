"""Single sign-on with organizations' OpenID Connect providers (the sso app, docs/sso.md)."""

from django.core.exceptions import ImproperlyConfigured

from .base import PRODUCTION
from .env import env_bool

# Providers are reached over HTTPS only. SAAS_SSO_ALLOW_HTTP_ISSUER=1 also accepts a provider on
# this machine (loopback) over plain HTTP: for tests and development, never in production.
SSO_ALLOW_HTTP_ISSUER = env_bool("SAAS_SSO_ALLOW_HTTP_ISSUER", False)
if PRODUCTION and SSO_ALLOW_HTTP_ISSUER:
    raise ImproperlyConfigured("SAAS_SSO_ALLOW_HTTP_ISSUER is for tests and development, not production.")

# How long a sign-in may stay at the provider before coming back (its state and nonce expire).
SSO_FLOW_MINUTES = 10
# Seconds to wait for the provider (discovery, keys, token and userinfo endpoints).
SSO_PROVIDER_TIMEOUT = 10
# How long the link stays valid that an existing account's owner is emailed to connect the account
# to their organization's single sign-on (the provider alone does not speak for an account).
SSO_LINK_MINUTES = 60
