"""`infra` holds the deploy targets (AWS, Kubernetes) with no Django and no app: whatever settings
say is passed in by saas.deployments. Imported alone, in a fresh interpreter, they pull in none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
APPS = {"django", "rest_framework", "django_tenants", "celery", "core", "saas", "tenants", "billing"}


def test_the_aws_and_kubernetes_clients_import_no_django_and_no_app() -> None:
    probe = (
        "import sys, infra.aws, infra.kubernetes.api, infra.kubernetes.gateway\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(APPS)!r})))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert answer.stdout.strip() == "[]", answer.stdout + answer.stderr
