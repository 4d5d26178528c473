"""The wall clock, read in one place: business code (billing periods, invoices, quotas, token and
invitation expiry, retention, metering) asks `now()` here, never `datetime.now()`,
`date.today()` or `timezone.now()` itself (model defaults such as `auto_now_add` read the same
clock through Django). Tests set it with `time_machine`: a fixed instant per test, or the whole
session shifted by `SAAS_TEST_CLOCK_SHIFT_DAYS`. Durations and deadlines use `time.monotonic()`,
which no clock change moves."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    """The current instant, timezone-aware UTC."""
    return timezone.now()
