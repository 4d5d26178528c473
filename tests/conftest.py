"""Test setup: real PostgreSQL and Redis (started by `make test` through saas.launcher when
DATABASE_URL / REDIS_URL are unset), with the organization template schema in place."""

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import OrgWorld, build_org_world


def pytest_configure() -> None:
    from django.conf import settings

    # Argon2 is deliberately slow; tests only need passwords to round-trip.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Connections opened by async views on the shared thread pool close after each call, so
    # none outlives the test database.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


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
    from saas.celery import app

    app.conf.task_always_eager = True
