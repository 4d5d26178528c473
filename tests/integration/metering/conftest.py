"""The intake queue and its dead letters live in the public schema of a tenant app, which the
test database's flush between tests leaves alone (django-tenants' router keeps tenant apps out of
public): each test here starts and ends with both empty."""

from collections.abc import Iterator

import pytest
from django.db import connection


def _empty_queue() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE metering_usageintake, metering_usagedeadletter RESTART IDENTITY")


@pytest.fixture(autouse=True)
def _empty_intake_queue(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> Iterator[None]:
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        _empty_queue()
    yield
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        _empty_queue()
