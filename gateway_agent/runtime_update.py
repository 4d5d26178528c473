"""Which snapshot changes HAProxy can take through its runtime API, without a reload.

A pure function of two renderings: what HAProxy runs now and what the new snapshot renders to.
When the configuration text is the same apart from server weights, and nothing but map files
changed (consumers and their keys, routes that reuse existing plugin settings), the change is a
set of map swaps and `set weight` commands: no new worker, no re-parsed configuration, stick
tables (rate-limit counters) kept. Anything else needs a reload, pattern files (acl/) included:
HAProxy reads them at start only, so a consumers-only change that changes one (the consumers
consumer-restriction lets through, resolved from their labels) is applied by reload."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ROUTING_MAPS = "maps/routes_"
_SERVER = re.compile(r"^(    server (\S+) \S+ weight )(\d+)((?: .*)?)$")


@dataclass(frozen=True)
class MapSwap:
    name: str  # relative to the configuration folder, e.g. maps/keys.map
    entries: list[str]


@dataclass(frozen=True)
class RuntimeUpdate:
    """Map swaps in a safe order, then weights. Maps the routing maps point into (backends,
    plugin groups, limits) first receive old and new entries together, then the routing maps
    change, then those maps drop what is gone: a request never finds a route whose backend or
    plugin settings are missing."""

    map_swaps: list[MapSwap] = field(default_factory=list)
    weights: list[tuple[str, str, int]] = field(default_factory=list)  # backend, server, weight


def _entries(text: str) -> dict[str, str]:
    entries = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key:
            entries[key] = value
    return entries


def _weight_changes(running: str, new: str) -> list[tuple[str, str, int]] | None:
    old_lines, new_lines = running.splitlines(), new.splitlines()
    if len(old_lines) != len(new_lines):
        return None
    backend = ""
    changes = []
    for old, line in zip(old_lines, new_lines, strict=True):
        if line.startswith("backend "):
            backend = line.split()[1]
        if old == line:
            continue
        before, after = _SERVER.match(old), _SERVER.match(line)
        if before is None or after is None or (before[1], before[4]) != (after[1], after[4]):
            return None
        changes.append((backend, after[2], int(after[3])))
    return changes


def rebase(files: dict[str, str], from_dir: str, to_dir: str) -> dict[str, str]:
    """The same rendering, naming another folder."""
    return {name: content.replace(from_dir, to_dir) for name, content in files.items()}


def plan_runtime_update(
    running: dict[str, str], running_dir: str, new: dict[str, str], new_dir: str
) -> RuntimeUpdate | None:
    """`running` is rendered for `running_dir` (the folder HAProxy loaded), `new` for `new_dir`.
    None when the change needs a reload."""
    new = rebase(new, new_dir, running_dir)
    if set(running) != set(new):
        return None
    for name, content in new.items():
        if name != "haproxy.cfg" and not name.startswith("maps/") and running[name] != content:
            return None  # certificates, CA bundles, error pages, pattern files: read at start only
    weights = _weight_changes(running["haproxy.cfg"], new["haproxy.cfg"])
    if weights is None:
        return None
    changed = [n for n in sorted(new) if n.startswith("maps/") and new[n] != running[n]]
    routing = [n for n in changed if n.startswith(ROUTING_MAPS)]
    pointed_into = [n for n in changed if not n.startswith(ROUTING_MAPS)]
    swaps = []
    for name in pointed_into:
        if routing:
            both = {**_entries(running[name]), **_entries(new[name])}
            swaps.append(MapSwap(name, [f"{k} {v}" for k, v in both.items()]))
    for name in routing + pointed_into:
        swaps.append(MapSwap(name, new[name].splitlines()))
    return RuntimeUpdate(map_swaps=swaps, weights=weights)
