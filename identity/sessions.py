"""Sign-in sessions: a UserSession row beside each Django session, to list and end them.

Rows are made at sign-in (services.complete_sign_in) and refreshed at most once a minute by
identity.middleware; a session signed in before this existed gets its row at its next request.
Ending a session deletes it from Django's session store, so its cookie stops working at once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, logout
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare

from core import clock
from core.api.client import client_ip
from tenants.models import User

from .models import UserSession

# When this session's row was last refreshed (a POSIX timestamp, in the session itself: no
# query to know that it is not due yet).
SEEN_KEY = "identity.seen"
SEEN_RESOLUTION = timedelta(minutes=1)


def _store(session_key: str | None = None) -> SessionBase:
    engine = import_module(settings.SESSION_ENGINE)
    store: SessionBase = engine.SessionStore(session_key)
    return store


def _user_agent(request: HttpRequest) -> str:
    return str(request.META.get("HTTP_USER_AGENT", ""))[:500]


def track(request: HttpRequest, user: User, method: str) -> UserSession:
    """The row of the session `request` was just signed in with."""
    key = request.session.session_key
    assert key, "track() follows login(), which saves the session"
    now = clock.now()
    session, _ = UserSession.objects.update_or_create(
        session_key=key,
        defaults={
            "user": user,
            "method": method,
            "ip_address": client_ip(request),
            "user_agent": _user_agent(request),
            "signed_in_at": now,
            "last_seen_at": now,
        },
    )
    request.session[SEEN_KEY] = now.timestamp()
    return session


def touch(request: HttpRequest, user: User) -> None:
    """Refresh the last-seen time and address of the request's session, at most once a minute."""
    key = request.session.session_key
    if not key:
        return
    now = clock.now()
    seen = request.session.get(SEEN_KEY)
    if isinstance(seen, int | float) and 0 <= now.timestamp() - seen < SEEN_RESOLUTION.total_seconds():
        return
    updated = UserSession.objects.filter(session_key=key, user=user).update(
        last_seen_at=now, ip_address=client_ip(request), user_agent=_user_agent(request)
    )
    if not updated:  # signed in before sessions were tracked
        UserSession.objects.update_or_create(
            session_key=key,
            defaults={
                "user": user,
                "method": "password",
                "ip_address": client_ip(request),
                "user_agent": _user_agent(request),
                "signed_in_at": now,
                "last_seen_at": now,
            },
        )
    request.session[SEEN_KEY] = now.timestamp()


def rekey(old_key: str | None, new_key: str | None) -> None:
    """The session's key changed (Django cycles it when the password changes): follow it."""
    if old_key and new_key and old_key != new_key:
        UserSession.objects.filter(session_key=old_key).update(session_key=new_key)


def _alive(session: UserSession, user: User) -> bool:
    """Whether the Django session is still there, unexpired, signed in as `user` with their
    current password (Django refuses a session made before a password change)."""
    data: dict[str, Any] = _store(session.session_key).load()
    return data.get(SESSION_KEY) == str(user.pk) and constant_time_compare(
        data.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()
    )


def active(user: User) -> list[UserSession]:
    """The user's sessions that still work, most recently seen first; rows of sessions that
    ended on their own (expired, signed out elsewhere) are dropped on the way."""
    sessions = list(UserSession.objects.filter(user=user))
    dead = [session.id for session in sessions if not _alive(session, user)]
    if dead:
        UserSession.objects.filter(id__in=dead).delete()
    return [session for session in sessions if session.id not in dead]


def end(sessions: list[UserSession], request: HttpRequest | None = None) -> int:
    """Delete these sessions from Django's store and forget them; the number ended. The session
    of `request`, if among them, is signed out through it: deleted under a request that still
    holds it, Django would try to save it again at the response."""
    store = _store()
    for session in sessions:
        if request is not None and session.session_key == request.session.session_key:
            logout(request)
        else:
            store.delete(session.session_key)
    UserSession.objects.filter(id__in=[session.id for session in sessions]).delete()
    return len(sessions)


def forget(session_key: str | None) -> None:
    """The row of a session that was signed out."""
    if session_key:
        UserSession.objects.filter(session_key=session_key).delete()


@dataclass(frozen=True)
class Device:
    browser: str
    system: str

    def __str__(self) -> str:
        if self.browser and self.system:
            return f"{self.browser} on {self.system}"
        return self.browser or self.system or "Unknown device"


# Most specific first: Edge and Opera say Chrome too, Chrome says Safari.
_BROWSERS = (
    ("Edge", r"Edg(?:e|A|iOS)?/"),
    ("Opera", r"OPR/|Opera"),
    ("Firefox", r"Firefox/|FxiOS/"),
    ("Headless Chrome", r"HeadlessChrome/"),
    ("Chrome", r"Chrome/|CriOS/|Chromium/"),
    ("Safari", r"Safari/"),
    ("curl", r"^curl/"),
    ("Python", r"python-|httpx/"),
)
_SYSTEMS = (
    ("iOS", r"iPhone|iPad|iPod"),
    ("Android", r"Android"),
    ("Windows", r"Windows"),
    ("macOS", r"Mac OS X|Macintosh"),
    ("ChromeOS", r"CrOS"),
    ("Linux", r"Linux|X11"),
)


def device_of(user_agent: str) -> Device:
    """A browser and system a person recognizes, read from a User-Agent header."""
    browser = next((name for name, pattern in _BROWSERS if re.search(pattern, user_agent)), "")
    system = next((name for name, pattern in _SYSTEMS if re.search(pattern, user_agent)), "")
    return Device(browser=browser, system=system)
