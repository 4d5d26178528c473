"""Repeated failed sign-ins lock the account and the address for a while: django-axes counts the
failures (its AccessAttempt rows, through the authentication backend and Django's
user_login_failed signal; wrong second-factor codes too, `record_failure`); this module tells
when a lock ends, in words a person can act on.

The auth throttle (tenants.api.throttles, SAAS_AUTH_THROTTLE_RATE) slows guessing first; after
AXES_FAILURE_LIMIT failures for one account, or from one address, within AXES_COOLOFF_TIME,
sign-in is refused until that long after the failures that made the count."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from axes.helpers import get_cool_off, get_credentials, get_failure_limit
from axes.models import AccessAttempt
from axes.utils import reset
from django.contrib.auth.signals import user_login_failed
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.exceptions import Throttled

from core import clock
from core.api.client import client_ip


@dataclass(frozen=True)
class Lock:
    until: datetime
    # The account's own failures (else only the address's, from attempts at other accounts too).
    of_account: bool

    def message(self) -> str:
        minutes = max(1, math.ceil((self.until - clock.now()).total_seconds() / 60))
        whose = "for this account" if self.of_account else "from your address"
        advice = " Resetting your password unlocks your account." if self.of_account else ""
        return (
            f"Too many failed sign-ins {whose}: try again after {self.until:%H:%M} UTC "
            f"(in {minutes} min).{advice}"
        )


class SignInLocked(Throttled):
    """429 with the lock's message and a Retry-After header. A DRF exception, so that every view
    on the sign-in path answers it alike without catching it."""

    def __init__(self, lock: Lock) -> None:
        super().__init__(detail=lock.message())
        # Set after construction: given to Throttled, the wait would be appended to the detail.
        self.wait = max(1, math.ceil((lock.until - clock.now()).total_seconds()))


def _lock_end(attempts: QuerySet[AccessAttempt], limit: int, cool_off: timedelta) -> datetime | None:
    """Axes sums the failures of the rows seen within the cool-off; the lock ends when that sum
    falls below the limit: the cool-off after the row at which, newest first, it reaches it."""
    total = 0
    for attempt_time, failures in attempts.order_by("-attempt_time").values_list(
        "attempt_time", "failures_since_start"
    ):
        total += failures
        if total >= limit:
            return attempt_time + cool_off
    return None


def current_lock(request: HttpRequest, email: str) -> Lock | None:
    """The lock on signing in as `email` from this request's address, if any."""
    cool_off = get_cool_off(request)
    if cool_off is None:  # locked until an admin resets it: not how this product is configured
        return None
    limit = get_failure_limit(request, get_credentials(email))
    recent = AccessAttempt.objects.filter(attempt_time__gte=clock.now() - cool_off)
    account = _lock_end(recent.filter(username=email), limit, cool_off)
    ip_address = client_ip(request)
    address = _lock_end(recent.filter(ip_address=ip_address), limit, cool_off) if ip_address else None
    if account is None and address is None:
        return None
    if account is not None and (address is None or account >= address):
        return Lock(until=account, of_account=True)
    assert address is not None
    return Lock(until=address, of_account=False)


def record_failure(request: HttpRequest, email: str) -> Lock | None:
    """Count a failed sign-in at `email` that no password check saw (a wrong second-factor
    code): through Django's user_login_failed signal, as axes counts a wrong password. The lock
    it starts, if it is the failure that reaches the limit."""
    user_login_failed.send(sender=__name__, credentials={"username": email}, request=request)
    just_locked = bool(getattr(request, "axes_locked_out", False))
    request.axes_locked_out = False  # type: ignore[attr-defined]  # answered by the caller, not AxesMiddleware
    return current_lock(request, email) if just_locked else None


def unlock_account(email: str) -> int:
    """Forget the failed sign-ins at `email` (a reset proved who owns it): the number forgotten."""
    return reset(username=email.lower())


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: what AxesMiddleware answers for a request that axes flagged as
    locked out and nothing answered yet (identity.services.sign_in answers locks itself and
    clears the flag). Axes' async path passes no response, so none is relied on."""
    if isinstance(original_response, HttpResponse) and original_response.status_code == 429:
        return original_response
    return JsonResponse({"detail": "Too many failed sign-ins: try again later."}, status=429)
