"""consumer-restriction: only the consumers a setting names, or that carry one of its labels, may
call; every other request is refused (403 in JSON by default), one with no authenticated
consumer too. It acts after authentication, which names the consumer (`txn.consumer`).

The consumers a setting lets through are resolved when rendering, from the snapshot's consumers,
into a pattern file per setting: a request pays one lookup whatever the number of consumers or
labels. A change of a consumer's labels changes that file, which HAProxy reads at start only, so
it is applied by reload (`runtime_update` swaps maps alone)."""

from __future__ import annotations

import re
from typing import Any

from ..consumer_set import ConsumerSet
from ..directives import PluginRules, RenderError, Settings, deny, group_file, pattern_file, when
from .context import RenderContext

MESSAGE = "The consumer is not allowed to call this route"
# A consumer's name as the catalog accepts it (specs.py's ConsumerSpec.username): one line of a
# pattern file, read as written (no blank, no leading `#`, which HAProxy would skip as a comment).
_USERNAME = re.compile(r"[A-Za-z0-9._@+-]{1,100}")


def allowed(config: dict[str, Any], consumers: ConsumerSet) -> list[str]:
    """The names of the consumers `config` lets through: listed by name, or carrying any one of
    its label pairs. Names of consumers the snapshot lacks are left out: no request names them."""
    found = set(config.get("consumers", [])) & consumers.usernames
    labels: dict[str, str] = config.get("labels", {})
    for label in labels.items():
        found.update(consumers.by_label.get(label, ()))
    for name in found:
        if not _USERNAME.fullmatch(name):
            raise RenderError(f"consumer-restriction: {name!r} cannot be a consumer's name.")
    return sorted(found)


def render(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules()
    for group, config in groups.items():
        relative, absolute = group_file(ctx.options, var, group)
        # Always written, empty too: an empty file matches no name, so the rule refuses everybody,
        # and the set of files stays the same when the first consumer gets the label.
        rules.files[relative] = pattern_file(allowed(config, ctx.consumers))
        status = int(config.get("rejected_code", 403))
        # No consumer named (a route without authentication): the fetch finds nothing, the
        # negated test holds, refused.
        rules.request.append(
            f"{deny(status, 'forbidden', MESSAGE)} if {when(var, group)} "
            f"!{{ var(txn.consumer) -m str -f {absolute} }}"
        )
    return rules
