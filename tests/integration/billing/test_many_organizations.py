"""Billing's periodic jobs over many organizations: their cost does not grow with the number of
organizations that have nothing to do, and the hourly calls they read equal the rollups. Every
test pins its own clock."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from billing import services, tasks
from billing.models import BillingAccount, Invoice, QuotaNotice
from saas.metering.models import HourlyCalls
from saas.metering.services import BillingPeriod, billable_calls, billable_calls_by
from tests.factories import add_calls, make_org

pytestmark = pytest.mark.django_db

NOVEMBER = BillingPeriod.containing(datetime(2026, 11, 1, tzinfo=UTC))


def _quota_check_queries() -> int:
    tasks.check_quotas()  # opens the accounts of organizations new since the last run
    with CaptureQueriesContext(connection) as queries:
        tasks.check_quotas()
    return len(queries)


@pytest.mark.time_machine(datetime(2026, 11, 20, 12, 0, tzinfo=UTC), tick=False)
def test_the_quota_check_costs_the_same_queries_for_3_and_30_organizations_and_announces_once():
    organizations = [make_org() for _ in range(3)]
    add_calls(organizations[0], 850_000, datetime(2026, 11, 20, 11, 0, tzinfo=UTC))  # 85 % of Free
    few = _quota_check_queries()
    organizations += [make_org() for _ in range(27)]
    add_calls(organizations[-1], 100, datetime(2026, 11, 20, 11, 0, tzinfo=UTC))
    assert _quota_check_queries() == few
    assert list(QuotaNotice.objects.values_list("organization_id", "threshold")) == [
        (organizations[0].id, 80)
    ]
    # Past the allowance: blocked once, by the batched check as by the single one.
    add_calls(organizations[0], 150_000, datetime(2026, 11, 20, 11, 30, tzinfo=UTC))
    assert tasks.check_quotas() == 1
    assert services.evaluate_quota(organizations[0]) is False
    account = BillingAccount.objects.get(organization=organizations[0])
    assert account.quota_exceeded and account.quota_resets_at == NOVEMBER.end
    assert sorted(QuotaNotice.objects.values_list("threshold", flat=True)) == [80, 100]


def test_the_invoice_run_issues_each_invoice_once_and_its_second_run_visits_no_organization(
    time_machine: Any,
) -> None:
    time_machine.move_to(datetime(2026, 11, 20, 12, 0, tzinfo=UTC), tick=False)
    organizations = [make_org() for _ in range(5)]
    time_machine.move_to(datetime(2026, 12, 1, 0, 5, tzinfo=UTC), tick=False)
    newcomer = make_org()  # signed up once November had ended: it owes nothing for November
    time_machine.move_to(datetime(2026, 12, 2, 12, 0, tzinfo=UTC), tick=False)
    add_calls(organizations[2], 1_234, datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    assert tasks.issue_local_invoices() == 5
    assert services.organizations_to_invoice(NOVEMBER) == []
    assert not Invoice.objects.filter(organization=newcomer).exists()
    assert tasks.issue_local_invoices() == 0
    # Calls of November arriving now are late usage, carried once into December's bill.
    add_calls(organizations[2], 66, datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    assert tasks.carry_late_usage() == 66
    assert tasks.carry_late_usage() == 0


def test_hourly_calls_equal_the_rollups_and_an_hour_counts_in_the_period_it_starts_in():
    organization = make_org()
    add_calls(organization, 5, datetime(2026, 10, 31, 23, 59, tzinfo=UTC))
    add_calls(organization, 7, datetime(2026, 11, 1, 0, 0, tzinfo=UTC))
    add_calls(organization, 11, datetime(2026, 11, 1, 0, 30, tzinfo=UTC))
    assert billable_calls(organization, NOVEMBER) == 18
    # A Stripe period starting mid-hour: that hour belongs to the period before, as at Stripe.
    assert (
        billable_calls(organization, BillingPeriod(datetime(2026, 11, 1, 0, 10, tzinfo=UTC), NOVEMBER.end))
        == 0
    )
    assert billable_calls_by("day", organization, NOVEMBER.start, NOVEMBER.end) == {NOVEMBER.start: 18}


def test_the_migration_fills_the_hourly_calls_from_the_rollups_already_there():
    organization = make_org()
    add_calls(organization, 5, datetime(2026, 11, 3, 10, 1, tzinfo=UTC))
    add_calls(organization, 7, datetime(2026, 11, 3, 10, 59, tzinfo=UTC))
    add_calls(organization, 9, datetime(2026, 11, 3, 11, 0, tzinfo=UTC))
    HourlyCalls.objects.all().delete()  # as before the migration
    migration = importlib.import_module("saas.metering.migrations.0005_hourly_calls")
    with schema_context("public"):
        migration.fill_from_rollups(None, SimpleNamespace(connection=connection))
    assert sorted(HourlyCalls.objects.values_list("hour", "calls")) == [
        (datetime(2026, 11, 3, 10, tzinfo=UTC), 12),
        (datetime(2026, 11, 3, 11, tzinfo=UTC), 9),
    ]
