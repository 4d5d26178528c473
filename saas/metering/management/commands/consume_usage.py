"""Run one usage consumer until SIGTERM or SIGINT: `make run` starts one; start as many as
you like. Each takes the oldest queued batches no other consumer holds (saas/metering/
intake_queue.py), so they share the queue without coordinating."""

from __future__ import annotations

import signal
import socket
import threading
from typing import Any

from django.core.management.base import BaseCommand

from core.heap import freeze_startup_objects
from saas.metering.intake_queue import COUNT, GATHER_S, IDLE_SLEEP_S, UsageConsumer


class Command(BaseCommand):
    help = "Record queued usage batches (PostgreSQL intake queue) into the rollup tables."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--name", default=f"{socket.gethostname()}-consumer", help="for the log")
        parser.add_argument("--count", type=int, default=COUNT, help="most batches per transaction")
        parser.add_argument(
            "--gather",
            type=float,
            default=GATHER_S,
            help="seconds to wait after a transaction that took less than --count (batches gather)",
        )
        parser.add_argument(
            "--idle-sleep", type=float, default=IDLE_SLEEP_S, help="seconds between looks at an empty queue"
        )
        # Of the Redis stream consumer: a consumer killed now leaves nothing to claim (its
        # transaction rolls back and the rows are free at once). Accepted, and ignored, so that
        # deployments passing it keep starting.
        parser.add_argument(
            "--claim-idle-ms", type=int, default=None, help="no effect (kept for old deployments)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        freeze_startup_objects()
        self.stdout.write(f"usage consumer {options['name']} started")
        self.stdout.flush()  # a log file is block-buffered; whoever waits on this line sees it now
        UsageConsumer(
            options["name"],
            count=options["count"],
            idle_sleep_s=options["idle_sleep"],
            gather_s=options["gather"],
        ).run(stop)
