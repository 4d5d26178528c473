"""Outgoing email. In development the console backend prints messages (invitation, password reset
and verification links); the file-based backend writes them into EMAIL_FILE_PATH (end-to-end tests
read the links there)."""

from .env import env_bool, env_int, env_optional, env_str

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Gateway Cloud <noreply@localhost>")
# django.core.mail.backends.filebased.EmailBackend's folder: one file per message.
_email_file_path = env_optional("EMAIL_FILE_PATH")
if _email_file_path:
    EMAIL_FILE_PATH = _email_file_path

# The links emailed by identity (docs/identity.md): a password reset link works once, for this
# long (Django's setting, in seconds); an email verification link, for this many hours.
PASSWORD_RESET_TIMEOUT = env_int("SAAS_PASSWORD_RESET_TTL_MINUTES", 60) * 60
EMAIL_VERIFICATION_TTL_HOURS = env_int("SAAS_EMAIL_VERIFICATION_TTL_HOURS", 48)
