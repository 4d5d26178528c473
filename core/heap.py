"""Long-lived control-plane processes and Python's cyclic garbage collector.

A full collection walks every object the collector tracks. A web process holds some 130,000
from its start (Django, DRF, the models, the URL configuration) for as long as it lives, and
each full collection walked them all again: one landing in a request made it take twice as long
(creating a route with its publish: 70 ms at the median, 180 ms at p95 with 1,000 routes and
10,000 consumers), and the usage intake and consumer ran at half their speed. Frozen into the
permanent generation once the process has started, they are never walked again.

What a process makes while it serves is walked too: a web process holding 5,000 gateways' long-
polls and keep-alive connections tracks some two million objects, and at Python's default
thresholds it ran a full collection every few seconds, each up to 0.85 s with the event loop
stopped (2.9 s of every 10 while 10,000 agents connected, in `make bench-fleet`): the reports
queued behind it. Collections of the young generation stay frequent (cycles of a request die
young); full ones come at most once per 100 collections of the middle one."""

import gc

# Young, middle and old generation (Python's defaults: 700, 10, 10).
SERVING_THRESHOLDS = (50_000, 20, 100)


def freeze_startup_objects() -> None:
    """Call once the process has imported what it serves with; what is garbage by then is
    collected first, so nothing frozen is garbage. Then the collector runs at the thresholds
    for serving."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  imports every view now, not in the first request
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_THRESHOLDS)
