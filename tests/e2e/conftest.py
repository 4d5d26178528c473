"""The browser and the control plane that the console's end-to-end tests drive: Debian's
Chromium through Playwright, and the control plane as `make run` serves it (its web process and
the usage consumer)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page, expect, sync_playwright

from saas.launcher.services import free_port
from tests.control_plane import ROOT, start_control_plane, wait_until_up
from tests.e2e.console_steps import CHROMIUM_ARGS, control_plane_env


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not (settings.CONSOLE_DIST / "index.html").is_file():
        pytest.fail("The console is not built: `make test` builds it (make console).")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        pytest.fail("Chromium is missing: `make test` installs it (make system-deps).")
    # Playwright's sync API keeps an event loop on this thread while the browser runs; the
    # tests' own ORM calls are still plain synchronous ones.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    expect.set_options(timeout=15_000)  # what a live page waits for: a refresh, a heartbeat
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def control_plane(transactional_db: None) -> Iterator[str]:
    """The control plane's URL: its web process and the usage consumer, as `make run` starts them."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = control_plane_env(SAAS_PUBLIC_URL=url)
    web = start_control_plane(port, env)
    consumer = subprocess.Popen(
        [sys.executable, "manage.py", "consume_usage", "--name", "console-e2e"], cwd=ROOT, env=env
    )
    try:
        wait_until_up(port)
        yield url
    finally:
        for process in (consumer, web):
            process.terminate()
            process.wait(timeout=20)
