"""Run one usage consumer until SIGTERM or SIGINT: `make run` starts one; start as many as
you like, each with its own --name."""

from __future__ import annotations

import signal
import socket
import threading
from typing import Any

from django.core.management.base import BaseCommand

from core.heap import freeze_startup_objects
from saas.metering.stream import UsageConsumer


class Command(BaseCommand):
    help = "Write usage batches from the Redis stream to the rollup tables."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--name", default=f"{socket.gethostname()}-consumer")
        parser.add_argument("--claim-idle-ms", type=int, default=30_000)

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        freeze_startup_objects()
        self.stdout.write(f"usage consumer {options['name']} started")
        UsageConsumer(options["name"], claim_idle_ms=options["claim_idle_ms"]).run(stop)
