"""limit-count's counters, carried across a reload.

A reload starts a new HAProxy worker with empty stick tables, and HAProxy 2.6's own local peer
resync did not carry them here. Without help, every configuration change that needs a reload
would give every client a fresh rate-limit window. So each limit-count table outlives its
worker, as the usage table does (`directives.kept_table`), and after a reload the agent copies
the current window's counters from the old worker, which it holds a session on, into the new
one. That costs about 0.1 ms a counter (commands are sent a hundred at a time), after the new
worker already serves: 10,000 clients counted in the current window take about a second.

A table is named by what its counter keys mean, the window and what is counted (route, consumer
or client address), not by the group's position in the snapshot: the same name in the next
configuration holds the same counters. Groups that differ only in their count share a table;
their keys carry the route, so they never meet."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .directives import kept_table
from .runtime_api import RuntimeAPI, RuntimeAPIError, WorkerSession

TABLE = "counts"
_SECTION = re.compile(r"^peers (rl_(\d+)s_[a-z_]+)$", re.MULTILINE)
_ENTRY = re.compile(r"\bkey=(\S+) .*\bgpc0=(\d+)")
_CLI_SAFE = re.compile(r"^[A-Za-z0-9._@+:\-\[\]]+$")


def section_name(window_s: int, scope: str) -> str:
    return f"rl_{window_s}s_{scope}"


def table_ref(window_s: int, scope: str) -> str:
    return f"{section_name(window_s, scope)}/{TABLE}"


def table_section(window_s: int, scope: str) -> list[str]:
    """One table of counters: keys of up to 200 characters, each kept for two windows."""
    return kept_table(
        table_ref(window_s, scope), f"type string len 200 size 1m expire {window_s * 2}s store gpc0"
    )


@dataclass(frozen=True)
class CounterTable:
    ref: str
    window_s: int


def tables_of(config: str) -> list[CounterTable]:
    """The limit-count tables a rendered haproxy.cfg declares."""
    return [CounterTable(f"{name}/{TABLE}", int(window)) for name, window in _SECTION.findall(config)]


def parse_counters(text: str) -> dict[str, int]:
    """`show table <ref>` as {key: count}."""
    return {match.group(1): int(match.group(2)) for match in map(_ENTRY.search, text.splitlines()) if match}


def current(counters: dict[str, int], window_s: int, now: float) -> dict[str, int]:
    """The counters of the window `now` falls in: a key starts with its window's number."""
    prefix = f"{int(now) // window_s}:"
    return {key: count for key, count in counters.items() if key.startswith(prefix) and _CLI_SAFE.match(key)}


def carry(old: WorkerSession, new: RuntimeAPI, config: str, now: float) -> int:
    """Add the old worker's counters of the current windows to the new worker's (which may have
    counted a few requests already), for every table the new configuration shares with the old
    worker's. Returns how many counters were carried. Requests the old worker finishes after
    this are not carried: a connection closes after its request in flight, so they are few."""
    carried = 0
    for table in tables_of(config):
        answer = old.command(f"show table {table.ref}")
        if answer.startswith("No such table"):
            continue  # a window or scope the old configuration did not have
        counters = current(parse_counters(answer), table.window_s, now)
        if not counters:
            continue
        already = parse_counters(new.worker(f"show table {table.ref}"))
        commands = [
            f"set table {table.ref} key {key} data.gpc0 {count + already.get(key, 0)}"
            for key, count in counters.items()
        ]
        for answer in new.worker_each(commands):
            if answer:
                raise RuntimeAPIError(f"set table {table.ref}: {answer}")
        carried += len(commands)
    return carried
