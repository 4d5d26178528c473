"""Usage batches the consumers could not record (saas/metering/dead_letters.py).

    manage.py usage_dead_letters list [--limit N]   how many, per organization and reason, the oldest
    manage.py usage_dead_letters replay --id N       back to the queue (--id again for more)
    manage.py usage_dead_letters replay --all        every one back to the queue
    manage.py usage_dead_letters purge --id N        drop one for good

A replayed batch already recorded (by an agent's retry, or a replay before) counts nothing twice:
batches are recorded once per batch id. One that fails again comes back here, with its reason."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from saas.metering import dead_letters


def _batch_id(batch: str) -> str:
    try:
        value = json.loads(batch).get("batch_id")
    except (ValueError, AttributeError):
        return "?"
    return str(value) if value else "?"


class Command(BaseCommand):
    help = "List, replay or purge usage batches the consumers could not record."

    def add_arguments(self, parser: Any) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="how many, per organization and reason, the oldest")
        listing.add_argument("--limit", type=int, default=50, help="dead letters to show one by one")
        replay = actions.add_parser("replay", help="move dead letters back to the queue")
        which = replay.add_mutually_exclusive_group(required=True)
        which.add_argument("--id", type=int, action="append", dest="ids", help="a dead letter's id")
        which.add_argument("--all", action="store_true")
        purge = actions.add_parser("purge", help="drop one dead letter for good")
        purge.add_argument("--id", type=int, required=True, dest="id")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            self._list(options["limit"])
        elif action == "replay":
            ids = None if options["all"] else options["ids"]
            moved = dead_letters.replay_dead_letters(ids)
            if ids is not None and moved < len(set(ids)):
                self.stderr.write(f"{len(set(ids)) - moved} of the ids given are not dead letters.")
            self.stdout.write(f"{moved} dead letters moved back to the usage queue.")
        elif action == "purge":
            if not dead_letters.purge_dead_letter(options["id"]):
                raise CommandError(f"No dead letter {options['id']}.")
            self.stdout.write(f"Dead letter {options['id']} purged.")

    def _list(self, limit: int) -> None:
        groups = dead_letters.dead_letter_groups()
        total = sum(group.count for group in groups)
        if not total:
            self.stdout.write("No dead letters.")
            return
        oldest = min(group.oldest for group in groups)
        self.stdout.write(f"{total} dead letters, the oldest from {oldest:%Y-%m-%d %H:%M:%S} UTC.")
        self.stdout.write("\ncount  organization  oldest               reason")
        for group in groups:
            self.stdout.write(
                f"{group.count:>5}  {group.schema_name}  {group.oldest:%Y-%m-%d %H:%M:%S}  {group.reason}"
            )
        self.stdout.write("\nid  organization  cluster  batch  failed at  reason")
        for letter in dead_letters.dead_letters(limit):
            self.stdout.write(
                f"{letter.id}  {letter.schema_name}  {letter.cluster_id}  {_batch_id(letter.batch)}  "
                f"{letter.failed_at:%Y-%m-%d %H:%M:%S}  {letter.reason}"
            )
        if total > limit:
            self.stdout.write(f"... and {total - limit} more (--limit).")
