"""Core Django settings: apps, middleware, templates, static files, product options."""

from datetime import timedelta
from pathlib import Path

from .env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent

# SAAS_ENV=production turns on the hardened settings in security.py and makes secrets mandatory.
SAAS_ENV = env_str("SAAS_ENV", "development")
PRODUCTION = SAAS_ENV == "production"

# Off unless asked for, `make run` included: a product run shows no tracebacks (SAAS_DEBUG=1).
DEBUG = env_bool("SAAS_DEBUG", False)
# `make run` makes the secrets below once at random into its data folder and passes them to the
# processes it starts; a development process started by hand reads the same files.
_RUN_DATA = Path(env_str("SAAS_DATA_DIR", str(BASE_DIR / ".run" / "data")))


def _run_secret(name: str) -> str | None:
    path = _RUN_DATA / name
    return path.read_text().strip() if not PRODUCTION and path.is_file() else None


# Signs password-reset links, CSRF tokens and signed values: never a key from the source, except
# for a process with no data folder at all (a bare `manage.py check`).
SECRET_KEY = env_str(
    "DJANGO_SECRET_KEY",
    None if PRODUCTION else _run_secret("django-secret-key") or "django-insecure-development-only-key",
)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"])

# Where users reach the control plane; used in emails (invitation links).
PUBLIC_URL = env_str("SAAS_PUBLIC_URL", "http://localhost:8000").rstrip("/")

# Keys for secrets that must be decrypted later (JWT keys, TLS private keys). Comma-separated
# Fernet keys: the first encrypts, all decrypt, so keys rotate without re-encrypting at once.
_run_field_key = _run_secret("field-encryption.key")
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEY", [_run_field_key] if _run_field_key else [])
if PRODUCTION and not FIELD_ENCRYPTION_KEYS:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("Set FIELD_ENCRYPTION_KEY (a Fernet key) in production.")

INVITATION_TTL_HOURS = env_int("SAAS_INVITATION_TTL_HOURS", 72)
# Where the agent wheel served to self-hosted gateways is built (on first download).
GATEWAY_AGENT_DIST_DIR = Path(env_str("GATEWAY_AGENT_DIST_DIR", str(BASE_DIR / ".run" / "dist")))
API_TOKEN_PREFIX = "sgw_"

SHARED_APPS = [
    "django_tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "tenants",
    "axes",
    "identity",
    "sso",
    "billing",
]
# Apps whose tables live in each organization's own schema (the catalog and gateways, later).
TENANT_APPS = [
    "django.contrib.contenttypes",
    "saas.gateways",
    "saas.catalog",
    "saas.metering",
    "saas.deployments",
    "saas.portal",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

AUTH_USER_MODEL = "tenants.User"
# django-axes' backend first: it refuses a locked account or address before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Lockout (django-axes, docs/identity.md): SAAS_LOCKOUT_FAILURES failed sign-ins for one account,
# or from one address, within SAAS_LOCKOUT_MINUTES lock signing in for SAAS_LOCKOUT_MINUTES after
# them. The auth throttle (SAAS_AUTH_THROTTLE_RATE) slows guessing before that.
AXES_FAILURE_LIMIT = env_int("SAAS_LOCKOUT_FAILURES", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SAAS_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# identity signs in with authenticate(username=<email>): the account is that credential.
AXES_USERNAME_FORM_FIELD = "username"
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
# The same client address as everywhere else (behind SAAS_TRUSTED_PROXY_COUNT proxies).
AXES_CLIENT_IP_CALLABLE = "core.api.client.client_ip"
# A success does not wipe the failures: an attacker's own account must not reset an address's count.
AXES_RESET_ON_SUCCESS = False
# Attempts during a lock do not extend it: the time it ends, once told, holds.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "identity.lockout.lockout_response"
# Sign-ins are recorded as sessions (identity) and in the audit log, not in axes' access log.
AXES_DISABLE_ACCESS_LOG = True
# No banner at every process start; failures are still logged (identity logs its own too).
AXES_VERBOSE = False

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "saas.static_files.StaticFilesMiddleware",
    # A developer portal's own host name is served as /portal/<slug>/ (saas.portal.web.access).
    "saas.portal.web.access.PortalHostMiddleware",
    "tenants.middleware.PublicSchemaMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "identity.middleware.SessionActivityMiddleware",
    "identity.middleware.MfaSetupRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks; the sign-in views answer a lockout themselves (identity.lockout).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "saas.urls"
# Organizations are addressed by slug in the path, so every request starts in the public schema.
PUBLIC_SCHEMA_URLCONF = "saas.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "saas" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "saas.asgi.application"
WSGI_APPLICATION = "saas.wsgi.application"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / ".run" / "static")))
if not PRODUCTION:
    STATIC_ROOT.mkdir(
        parents=True, exist_ok=True
    )  # whitenoise expects it; collectstatic fills it in production
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# In development whitenoise serves straight from the apps' folders, no collectstatic needed.
WHITENOISE_USE_FINDERS = not PRODUCTION
# The web console's build (`make console`): its assets under /static/console/, its pages at /console/.
CONSOLE_DIST = BASE_DIR / "frontend" / "dist"
STATICFILES_DIRS = [("console", CONSOLE_DIST)] if CONSOLE_DIST.is_dir() else []

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOG_LEVEL = env_str("SAAS_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
