"""Test setup: real PostgreSQL and Redis (started by `make test` through saas.launcher when
DATABASE_URL / REDIS_URL are unset), with the organization template schema in place.

SAAS_TEST_CLOCK_SHIFT_DAYS=N runs the whole session N days ahead of today (`make test-shifted`):
time_machine travels there, ticking, before any test reads the clock, so nothing may assume the
current year or month. Tests that pin their own instant (`@pytest.mark.time_machine(...)`) still
do, on top of it."""

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import OrgWorld, build_org_world

_SHIFTED_CLOCK = pytest.StashKey[time_machine.travel]()


def _clock_shift_days() -> int:
    return int(os.environ.get("SAAS_TEST_CLOCK_SHIFT_DAYS", "0") or 0)


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings

    if _clock_shift_days():
        shifted = time_machine.travel(datetime.now(UTC) + timedelta(days=_clock_shift_days()), tick=True)
        shifted.start()
        config.stash[_SHIFTED_CLOCK] = shifted

    # Argon2 is deliberately slow; tests only need passwords to round-trip.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Connections opened by async views on the shared thread pool close after each call, so
    # none outlives the test database.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


def pytest_unconfigure(config: pytest.Config) -> None:
    shifted = config.stash.get(_SHIFTED_CLOCK, None)
    if shifted is not None:
        shifted.stop()


def pytest_report_header() -> str | None:
    days = _clock_shift_days()
    return f"clock shifted {days} days ahead: now {datetime.now(UTC):%Y-%m-%d %H:%M} UTC" if days else None


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> None:  # type: ignore[override]
    from tenants.provisioning import ensure_template_schema

    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        ensure_template_schema()


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    cache.clear()  # throttle counters and cached values from other tests
    yield
    connection.set_schema_to_public()


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def world(db: None) -> OrgWorld:
    """Two organizations, A and B, each with one member of every role."""
    return build_org_world()


@pytest.fixture(autouse=True, scope="session")
def _eager_celery() -> None:
    # Most tests run tasks in-process; test_invitation_email_worker runs a real worker.
    from core.celery import app

    app.conf.task_always_eager = True
