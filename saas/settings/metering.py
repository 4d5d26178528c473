"""Metering: what usage the intake takes (saas/metering/bounds.py)."""

from .env import env_int

# Usage for a minute older than this many days is refused (400): agents spool for 7 days at most,
# and older minutes would land in billing periods long invoiced.
SAAS_USAGE_MAX_AGE_DAYS = env_int("SAAS_USAGE_MAX_AGE_DAYS", 35)
