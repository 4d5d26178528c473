"""Billing: plans and Stripe. Without STRIPE_SECRET_KEY billing runs locally (plans, usage,
quotas, cost preview, monthly invoices made by the control plane)."""

from .env import env_str

BILLING_PLANS_FILE = env_str("BILLING_PLANS_FILE", "")
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY", "")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET", "")
# Where the Stripe API is: only tests point it elsewhere (a fake Stripe server).
STRIPE_API_BASE = env_str("STRIPE_API_BASE", "https://api.stripe.com")
STRIPE_METER_EVENT_NAME = env_str("STRIPE_METER_EVENT_NAME", "api_calls")
