"""Fixtures of the billing tests: `stripe_fake`, Stripe connected to a fake Stripe HTTP server
(tests/fakes/stripe_server.py) for the real `stripe` library; `subscribed`, an organization on a
metered plan with a Stripe customer."""

import pytest

from billing import services
from billing.models import BillingAccount
from tests.fakes.stripe_server import FakeStripe

SECRET = "whsec_test_secret"


@pytest.fixture
def stripe_fake(settings):
    server = FakeStripe()
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.STRIPE_API_BASE = server.url
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    yield server
    server.close()


def subscribed(org, customer: str = "cus_42") -> BillingAccount:
    account = services.account_for(org)
    account.plan, account.stripe_customer_id = "pro", customer
    account.save()
    return account
