"""make bench-provision: time to provision one organization when 1, 50 and 200 already exist.

Runs against a fresh database on the server `make bench-provision` starts. Each sample is the
whole `create_organization` service: organization row, schema cloned from the template,
owner membership, audit entry, one transaction. For comparison, in the same run, the same
provisioning through django-tenants' stock path (which re-creates its clone function each time).
The last line is one JSON object."""

import json
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

LEVELS = (1, 50, 200)
SAMPLES = 15


def _fresh_database() -> None:
    url = urlparse(os.environ["DATABASE_URL"])
    admin_url = urlunparse(url._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS bench_provision WITH (FORCE)")
        conn.execute("CREATE DATABASE bench_provision")
    os.environ["DATABASE_URL"] = urlunparse(url._replace(path="/bench_provision"))


def main() -> None:
    _fresh_database()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate_schemas", "--noinput", verbosity=0)
    call_command("ensure_template_schema", verbosity=0)

    from tenants import services
    from tenants.audit import Actor
    from tenants.models import Organization, User
    from tenants.provisioning import new_schema_name

    owner = User.objects.create_user(email="bench@example.com", password="a long passphrase")
    actor = Actor(user=owner)
    counter = iter(range(10**6))

    def provision() -> float:
        start = time.perf_counter()
        services.create_organization(actor, name=f"Bench {next(counter)}", slug=None)
        return time.perf_counter() - start

    def provision_stock() -> float:
        start = time.perf_counter()
        org = Organization(schema_name=new_schema_name(), name="stock", slug=f"stock-{next(counter)}")
        org.save()
        org.create_schema(check_if_exists=False, verbosity=0)
        return time.perf_counter() - start

    figures: dict[str, float] = {}
    for level in LEVELS:
        while Organization.objects.filter(is_template=False).count() < level:
            provision()
        ours = [provision() for _ in range(SAMPLES)]
        stock = [provision_stock() for _ in range(SAMPLES)]
        existing = Organization.objects.filter(is_template=False).count()
        figures[f"provision_p50_s_at_{level}"] = round(statistics.median(ours), 4)
        figures[f"provision_max_s_at_{level}"] = round(max(ours), 4)
        figures[f"stock_django_tenants_p50_s_at_{level}"] = round(statistics.median(stock), 4)
        print(
            f"at {level:>3} organizations (ended with {existing}): ours p50 {statistics.median(ours):.3f} s, "
            f"django-tenants stock p50 {statistics.median(stock):.3f} s",
            flush=True,
        )
    figures["growth_200_vs_1"] = round(figures["provision_p50_s_at_200"] / figures["provision_p50_s_at_1"], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
