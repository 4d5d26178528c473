"""`make run` is a product run: Django's debug mode (tracebacks in answers) only with SAAS_DEBUG=1."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def _debug_with(**env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k not in ("SAAS_DEBUG", "DJANGO_DEBUG", "SAAS_ENV")}
    environment.update(env, DJANGO_SETTINGS_MODULE="saas.settings")
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.DEBUG)"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "False"),  # development, as `make run` starts it
        ({"SAAS_DEBUG": "0"}, "False"),
        ({"DJANGO_DEBUG": "1"}, "False"),  # the old switch is gone
        ({"SAAS_DEBUG": "1"}, "True"),
    ],
)
def test_debug_is_off_unless_asked_for(env, expected):
    assert _debug_with(**env) == expected
