"""make bench-tenants: schema-per-tenant at scale. On a fresh database:

1. 1,000 organizations provisioned for real (schemas cloned from the template);
2. `migrate_schemas` of a small migration (a column and an index on the catalog's routes), which
   this run writes into a temporary copy of the catalog's migrations, applies over every schema
   and reverses, with the template executor (tenants.template_migrations) by default;
3. the periodic billing jobs timed with 10,000 organizations: the 1,000 real ones and 9,000
   synthetic ones (rows in the public schema without a schema of their own: the jobs read every
   organization's usage from the public hourly calls, and no job enters a schema unless it has
   something to publish there, which only the real ones are given reason to). Usage in every
   organization; half on a metered plan with a Stripe customer (a fake Stripe server at its HTTP
   boundary, tests/fakes), the rest on plans with an allowance, some of them past it.

Each job is run twice: its first run does the work (announcements and blocks, a meter event for
every customer's last hour, 10,000 invoices), its second finds nothing new. The last line is one
JSON object. Env: BENCH_TENANTS (1,000), BENCH_JOB_ORGANIZATIONS (10,000),
BENCH_MIGRATION_EXECUTOR (template; or multiprocessing, standard)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.perf.bench_catalog import django_on_fresh_database  # noqa: E402

TENANTS = int(os.environ.get("BENCH_TENANTS", "1000"))
JOB_ORGANIZATIONS = int(os.environ.get("BENCH_JOB_ORGANIZATIONS", "10000"))
EXECUTOR = os.environ.get("BENCH_MIGRATION_EXECUTOR", "template")
MIGRATIONS = ROOT / "saas" / "catalog" / "migrations"
INTERVALS_S = {
    "check_quotas": 30,
    "report_usage_to_stripe": 600,
    "issue_local_invoices": 3600,
    "carry_late_usage": 3600,
}

_MIGRATION = '''"""Written in a temporary folder by tests/perf/bench_tenants.py."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "{previous}")]

    operations = [
        migrations.AddField(
            model_name="route",
            name="bench_note",
            field=models.CharField(blank=True, default="", max_length=40),
        ),
        migrations.AddIndex(
            model_name="route",
            index=models.Index(fields=["bench_note"], name="route_bench_note"),
        ),
    ]
'''


def _log(message: str) -> None:
    print(f"[bench-tenants] {message}", flush=True)


def _timed(work: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def provision(count: int) -> float:
    from tenants import services
    from tenants.audit import Actor
    from tenants.models import User

    owner = User.objects.create_user(email="bench@example.com", password="a long passphrase")
    actor = Actor(user=owner)
    start = time.perf_counter()
    for index in range(count):
        services.create_organization(actor, name=f"Bench {index}", slug=f"bench-{index}")
        if (index + 1) % 250 == 0:
            _log(f"{index + 1} organizations provisioned")
    return time.perf_counter() - start


def _manage(settings_dir: Path, *args: str) -> float:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench_tenants_settings",
        "PYTHONPATH": os.pathsep.join([str(settings_dir), str(ROOT)]),
    }
    start = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, check=True, env=env)
    return time.perf_counter() - start


def time_migration() -> dict[str, float]:
    """Apply a new catalog migration over every schema, then reverse it. The catalog's migrations
    are copied with the new one into a folder of their own (MIGRATION_MODULES), never into the
    source tree, where a test run beside the benchmark would find it."""
    with tempfile.TemporaryDirectory(prefix="bench-tenants-") as folder:
        settings_dir = Path(folder)
        migrations = settings_dir / "bench_catalog_migrations"
        shutil.copytree(MIGRATIONS, migrations, ignore=shutil.ignore_patterns("__pycache__"))
        previous = sorted(p.stem for p in migrations.glob("[0-9][0-9][0-9][0-9]_*.py"))[-1]
        (migrations / f"{int(previous[:4]) + 1:04d}_bench_tenants_note.py").write_text(
            _MIGRATION.format(previous=previous)
        )
        (settings_dir / "bench_tenants_settings.py").write_text(
            'from saas.settings import *  # noqa: F403\n\nMIGRATION_MODULES = {"catalog": "bench_catalog_migrations"}\n'
        )
        forward = _manage(settings_dir, "migrate_schemas", "--noinput", "-v", "0", f"--executor={EXECUTOR}")
        _log(f"migrate_schemas (forward, {EXECUTOR}): {forward:.1f} s")
        back = _manage(
            settings_dir,
            "migrate_schemas",
            "catalog",
            previous,
            "--noinput",
            "-v",
            "0",
            f"--executor={EXECUTOR}",
        )
        _log(f"migrate_schemas (back to {previous}): {back:.1f} s")
    return {"migrate_s": round(forward, 1), "migrate_back_s": round(back, 1)}


def seed_synthetic(total: int, now: datetime) -> dict[str, int]:
    """Organizations up to `total` (public rows only), every one's account and usage."""
    from django.db import connection

    from billing.models import BillingAccount
    from tenants.models import Organization

    real = list(Organization.objects.filter(is_template=False).order_by("id"))
    Organization.objects.bulk_create(
        Organization(
            schema_name=f"synthetic_{index:05d}", name=f"Synthetic {index}", slug=f"synthetic-{index}"
        )
        for index in range(total - len(real))
    )
    organizations = list(Organization.objects.filter(is_template=False).order_by("id"))
    last_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    accounts, hourly = [], []
    blocked = announced = stripe = 0
    for index, organization in enumerate(organizations):
        is_real = index < len(real)
        if index % 2 == 1:  # metered, billed through Stripe
            accounts.append(
                BillingAccount(organization=organization, plan="pro", stripe_customer_id=f"cus_{index}")
            )
            stripe += 1
            calls = 20_000
        else:
            accounts.append(BillingAccount(organization=organization, plan="free"))
            calls = 20_000
            # Only organizations with a schema can be blocked (blocking publishes to their gateways).
            if is_real and index % 20 == 0:
                calls, blocked = 1_000_000, blocked + 1
            elif index % 10 == 0:
                calls, announced = 850_000, announced + 1
        hourly.append((organization.schema_name, last_hour, calls))
        hourly.append((organization.schema_name, last_hour - timedelta(hours=1), 1_000))
    BillingAccount.objects.bulk_create(accounts)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO metering_hourlycalls (schema_name, hour, calls)"
            " SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::bigint[])",
            [[row[0] for row in hourly], [row[1] for row in hourly], [row[2] for row in hourly]],
        )
    return {
        "organizations": len(organizations),
        "stripe_customers": stripe,
        "blocked": blocked,
        "announced_80": announced,
    }


def time_jobs(now: datetime) -> tuple[dict[str, float], dict[str, float]]:
    """Each job's first run and second run, in seconds."""
    import time_machine
    from django.test.utils import override_settings

    from billing import tasks
    from tests.fakes.stripe_server import FakeStripe

    first: dict[str, float] = {}
    second: dict[str, float] = {}

    def twice(name: str, job: Callable[[], Any]) -> None:
        first[name], result = _timed(job)
        second[name], again = _timed(job)
        _log(f"{name}: {first[name]:.2f} s ({result}), again {second[name]:.2f} s ({again})")

    with time_machine.travel(now, tick=True):
        twice("check_quotas", tasks.check_quotas)
        stripe = FakeStripe()
        try:
            with override_settings(STRIPE_SECRET_KEY="sk_test_bench", STRIPE_API_BASE=stripe.url):
                twice("report_usage_to_stripe", tasks.report_usage_to_stripe)
        finally:
            stripe.close()
    # The invoice run of the month these calls were made in, in the next month's first hour.
    month_end = (now.replace(day=28) + timedelta(days=4)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    with time_machine.travel(month_end + timedelta(minutes=30), tick=True):
        twice("issue_local_invoices", tasks.issue_local_invoices)
        twice("carry_late_usage", tasks.carry_late_usage)
    return first, second


def main() -> None:
    django_on_fresh_database("bench_tenants")
    logging.getLogger("stripe").setLevel(logging.WARNING)  # a line per meter event otherwise
    figures: dict[str, Any] = {}
    provision_s = provision(TENANTS)
    _log(f"{TENANTS} organizations provisioned in {provision_s:.1f} s")
    figures.update(organizations=TENANTS, provision_s=round(provision_s, 1), migrate_executor=EXECUTOR)
    figures.update(time_migration())
    # Mid-month: a quota's projection and Stripe's period are ordinary.
    now = datetime.now(UTC).replace(day=15, hour=12, minute=5, second=0, microsecond=0)
    figures["job_seed"] = seed_synthetic(JOB_ORGANIZATIONS, now)
    first, second = time_jobs(now)
    figures["job_organizations"] = figures["job_seed"]["organizations"]
    figures["jobs_s"] = {name: round(seconds, 2) for name, seconds in first.items()}
    figures["jobs_again_s"] = {name: round(seconds, 2) for name, seconds in second.items()}
    figures["jobs_share_of_interval"] = {
        name: round(max(first[name], second[name]) / INTERVALS_S[name], 3) for name in first
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
