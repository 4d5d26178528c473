"""Billing's periodic work. Tasks take ids, never model instances, with bounded retries."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from smtplib import SMTPException

from core import clock
from core.celery import app
from core.mail import send_templated_email
from saas.metering.services import BillingPeriod
from tenants.models import Organization

from . import late_usage, services, stripe_api
from .plans import get_plan

logger = logging.getLogger("billing")


def _stripe_customers() -> list[Organization]:
    """The organizations with a Stripe customer: the only ones the Stripe jobs have work for."""
    return list(
        Organization.objects.filter(is_template=False, billing__stripe_customer_id__gt="").order_by("id")
    )


@app.task(name="billing.check_quotas")
def check_quotas() -> int:
    """Every organization's thresholds and blocks; how many blocks changed."""
    return services.check_every_quota()


@app.task(
    name="billing.send_quota_email",
    autoretry_for=(SMTPException, OSError),
    max_retries=5,
    retry_backoff=True,
    retry_jitter=True,
)
def send_quota_email(organization_id: int, threshold: int, period_start: str) -> None:
    organization = Organization.objects.filter(id=organization_id).first()
    if organization is None:
        return
    account = services.account_for(organization)
    plan = get_plan(account.plan)
    period = services.current_period(account, datetime.fromisoformat(period_start) + timedelta(seconds=1))
    context = {
        "organization": organization,
        "plan": plan,
        "threshold": threshold,
        "period": period,
        "refused": plan.hard_cap and threshold >= 100,
    }
    send_templated_email(
        "billing/quota_email.txt",
        f"{organization.name} has used {threshold}% of its {plan.name} allowance",
        services.quota_email_recipients(organization),
        context,
    )


@app.task(name="billing.report_usage_to_stripe", autoretry_for=(OSError,), max_retries=3, retry_backoff=True)
def report_usage_to_stripe() -> int:
    """Each organization's usage to Stripe's meter: the period Stripe finalized is closed first,
    and its late usage carried into this period's meter events."""
    if not stripe_api.stripe_connected():
        return 0
    customers = _stripe_customers()
    closed = []
    for organization in customers:
        try:
            late_usage.close_stripe_period(organization)
            closed.append(organization)
        except Exception:  # its usage waits for the close: the next run tries again
            logger.exception("Stripe period not closed for organization %s", organization.id)
    late = set(late_usage.organizations_with_late_usage())  # in two queries, not one per customer
    sent = 0
    for organization in closed:
        try:
            if organization.id in late:
                late_usage.carry_late_usage(organization)
            sent += services.report_usage_to_stripe(organization)
        except Exception:  # the next run resends what is stored and unsent
            logger.exception("usage not reported to Stripe for organization %s", organization.id)
    return sent


@app.task(name="billing.issue_local_invoices")
def issue_local_invoices() -> int:
    """Billing run locally: each organization's invoice for the month that ended, then the late
    usage of months already invoiced carried to the next invoice. How many were issued."""
    if stripe_api.stripe_connected():
        return 0  # Stripe is the system of record for invoices
    last_month = BillingPeriod.containing(BillingPeriod.containing(clock.now()).start - timedelta(days=1))
    issued = [
        services.issue_local_invoice(organization, last_month)
        for organization in services.organizations_to_invoice(last_month)
    ]
    carry_late_usage()
    return len(issued)


@app.task(name="billing.carry_late_usage")
def carry_late_usage() -> int:
    """Late usage of every organization's closed periods, carried once into its open bill (run by
    the two tasks above; on its own, any time). Returns the calls carried."""
    if stripe_api.stripe_connected():
        for organization in _stripe_customers():
            try:
                late_usage.close_stripe_period(organization)
            except Exception:  # the next run closes what this one did not
                logger.exception("Stripe period not closed for organization %s", organization.id)
    carried = 0
    organizations = Organization.objects.filter(id__in=late_usage.organizations_with_late_usage()).order_by(
        "id"
    )
    for organization in organizations:
        try:
            carried += sum(carry.calls for carry in late_usage.carry_late_usage(organization))
        except Exception:  # the next run carries what this one did not
            logger.exception("late usage not carried for organization %s", organization.id)
    return carried
