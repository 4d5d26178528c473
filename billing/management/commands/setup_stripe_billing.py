"""Create (or find) the Stripe meter, products and prices of the configured plans. Idempotent."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from billing import stripe_api
from billing.plans import all_plans
from core.errors import ServiceError


class Command(BaseCommand):
    help = "Set up Stripe's meter and the plans' prices (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        if not stripe_api.stripe_connected():
            raise CommandError("STRIPE_SECRET_KEY is not set: billing runs locally, nothing to set up.")
        try:
            catalog = stripe_api.set_up_catalog(list(all_plans().values()))
        except ServiceError as exc:  # a meter that does not fit, for one
            raise CommandError(exc.detail) from exc
        for slug, prices in catalog.items():
            self.stdout.write(f"{slug}: base price {prices.base or '-'}, calls price {prices.calls or '-'}")
