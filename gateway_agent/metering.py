"""Counting the calls a gateway answers, in HAProxy, for billing and analytics.

Every request is counted once in the `usage/counts` stick table under
`<worker generation>|<route id>|<consumer>` (route 0: no route matched; no consumer: anonymous),
tracked on stick counter 2, with explicit increments that tell a request answered from one still
in flight:

- a request the gateway answers itself (401, 403, 404, 413, 429, a redirect, a mock, a CORS
  preflight): its status, by the answer's own condition;
- a request going upstream: gpc5 just before it goes (`txn.sent_ms` set), then gpc6 and its
  status class when it is answered, exactly once, whoever answers:
  - the upstream's answer, in the frontend's `http-response` rules (`txn.latency_ms` set);
  - an answer HAProxy makes itself once the request went upstream (504 after `timeout server`,
    503 for a refused connection, 502 for an upstream that closes before its headers), for which
    no `http-response` rule runs: in the one `http-after-response` rule, which HAProxy runs for
    every answer, its own included. HAProxy 2.6 has no `sc-inc-gpc` action there, but the
    `sc_inc_gpc` fetch works in its condition, on the counter the request tracked.

  No timer guesses: a request in flight stays in flight, however long it takes (a route may wait
  an hour) and however long the agent does not read. A client that goes away does not stop the
  count: without `option abortonclose` HAProxy still waits for the upstream's answer and runs the
  response rules. One that cancels its HTTP/2 stream (RST_STREAM) ends the request before any
  answer: it went upstream and is never answered. The agent counts such a request as 5xx once
  HAProxy says it is gone: `use`, in `show table`, is how many live requests hold the entry, so at
  least `gpc5 - gpc6 - use` of its requests will never be answered. What a worker that is gone left
  unanswered is counted as 5xx at once.

A status is counted in exactly one counter: its code's (`protocol.STATUS_CODES`, from
FIRST_CODE_GPC on) or else its class's (gpc0..4 = 1xx..5xx): one increment a request, however
many codes are told apart, and no read can see a code counted and its class not yet.

An upstream answer also adds one to the latency bucket its time falls in (gpc7 onwards): the
milliseconds from the request leaving for the upstream to the answer's headers, in the buckets
of LATENCY_BOUNDS_MS.

The agent reads the table's absolute counters and turns their growth into usage batches. Two
choices make a reload lose and double nothing:

- The table outlives its worker (`directives.kept_table`). A drain reader (a process of its
  own, which outlives the agent) holds a session on the old worker's stats socket across the
  reload, which keeps that worker alive once its last client is gone, writes its final counts
  for the agent, then lets it go. Nothing stops an old worker earlier (no
  `hard-stop-after`, no `mworker-max-reloads`): a call as long as its route's timeout is still
  counted when it is answered.
- Each worker generation (`proc.usage_gen`, the microsecond it loaded its configuration) keys its
  own entries, so counts from two workers never mix, even if a table were copied across."""

from __future__ import annotations

import re

from .directives import condition_of, kept_table, unquoted
from .protocol import LATENCY_BOUNDS_MS, STATUS_CODES

TABLE = "usage/counts"
# The key, computed where a request is tracked rather than kept in a variable: a variable set
# before authentication would have to be set again once the consumer is known, on every request.
KEY = "var(proc.usage_gen),concat(|,txn.route),concat(|,txn.consumer)"
UNMATCHED_KEY = "var(proc.usage_gen),concat(|0|)"
NO_ROUTE = "!{ var(txn.route) -m found }"
FIRST_LATENCY_GPC = 7
FIRST_CODE_GPC = FIRST_LATENCY_GPC + len(LATENCY_BOUNDS_MS) + 1
GPC_COUNT = FIRST_CODE_GPC + len(STATUS_CODES)
# The codes HAProxy answers itself once a request went upstream (an error of its own, a refused
# connection, a closed one, a timeout): the only ones the after-response rule tells apart.
HAPROXY_CODES = (500, 502, 503, 504)


def status_gpc(code: int) -> int:
    """The counter a request answered with `code` is counted in: its code's, or its class's."""
    return FIRST_CODE_GPC + STATUS_CODES.index(code) if code in STATUS_CODES else code // 100 - 1


_ANSWER = re.compile(r"^(\s*)http-request (return|redirect) ")
_STATUS = re.compile(r"\b(?:status|code) (\d{3})\b")


def _condition(line: str) -> str | None:
    """What follows the line's ` if ` outside quotes, or None when it has none."""
    return condition_of(line)


def _tracking(key: str) -> str:
    return f"http-request track-sc2 {key} table {TABLE}"


def count_answers(lines: list[str], *, tracked: bool = False) -> list[str]:
    """Each line that answers the request is preceded by the one that tracks it (unless the
    request is `tracked` already), and counts it in its own condition: `sc_inc_gpc` as the
    condition's last term runs only when every other term held, that is exactly when the answer
    is given. One rule fewer per refusal than a separate `sc-inc-gpc` action, and HAProxy
    evaluates every rule of every plugin for every request."""
    counted = []
    for line in lines:
        answer = _ANSWER.match(line)
        if answer:
            indent = answer.group(1)
            condition = _condition(line)
            # The answer's own status, not one in a user's text: quoted text left out.
            status = _STATUS.search(unquoted(line[: len(line) - len(condition or "")]))
            code = int(status.group(1)) if status else 302  # a redirect's default
            suffix = f" if {condition}" if condition else ""
            if not tracked:
                key = UNMATCHED_KEY if condition == NO_ROUTE else KEY
                counted.append(f"{indent}{_tracking(key)}{suffix}")
            count = f"{{ sc_inc_gpc({status_gpc(code)},2) -m int gt 0 }}"
            if condition is None:
                line = f"{line} if {count}"
            elif "||" in condition or " or " in condition:
                # An OR would let the count escape the other terms: a rule of its own then.
                counted.append(f"{indent}http-request sc-inc-gpc({status_gpc(code)},2){suffix}")
            else:
                line = f"{line} {count}"
        counted.append(line)
    return counted


# The end of a route's backend: a request going upstream is counted as sent.
UPSTREAM_LINES = ["http-request set-var(txn.sent_ms) date(0,ms) if { sc_inc_gpc(5,2) -m int gt 0 }"]
_NAMES_CONSUMER = re.compile(r"^\s*http-request set-var\(txn\.consumer\) ")


def count_route_answers(lines: list[str]) -> list[str]:
    """A route backend's rules, the request tracked once and unconditionally as soon as its key
    is final: right after the last rule that names the consumer (authentication's last step),
    or first when none does. An answer before that point is tracked by its own condition; one
    after it, and the request going upstream, only count. A request that passes then evaluates
    no tracking condition after authentication (key-auth's refusal and limit-count's included:
    650 instructions on bench-gateway's route)."""
    named = [index for index, line in enumerate(lines) if _NAMES_CONSUMER.match(line)]
    at = named[-1] + 1 if named else 0
    indent = lines[0][: len(lines[0]) - len(lines[0].lstrip())] if lines else ""
    return [
        *count_answers(lines[:at]),
        f"{indent}{_tracking(KEY)}",
        *count_answers(lines[at:], tracked=True),
    ]


def answer_lines() -> list[str]:
    """The frontend's lines counting an answer to a request that went upstream: its status code
    or class, its latency when the upstream answered, and that it is answered (gpc6).

    Counts happen inside conditions: a `counted_N` ACL (`sc_inc_gpc(N,2)`) is true once it has
    counted, so in `A counted_1 || B counted_2 || ...` exactly the first branch whose test holds
    counts, and the rest are not evaluated. Two response rules instead of one per status and
    latency bucket: HAProxy evaluates every rule for every answer; a 2xx stops at the first
    test. (Named ACLs keep the rules within HAProxy's 64 words a line: that bound is what limits
    STATUS_CODES.)

    The `http-after-response` rule counts what went upstream and got no upstream answer through
    the `http-response` rules: an answer HAProxy made itself. Its action, `allow`, does nothing but
    end the frontend's after-response rules (it must be the last: the backend's run before it);
    the counting is in its condition. An upstream answer stops at its first test, the gateway's
    own answers at its second."""
    acls, status, latency, made = [], [], [], []
    # 2xx first: most answers stop at the first test. A class's codes before the class.
    for low in (200, 300, 400, 500, 100):
        acls.append(f"acl status_{low // 100}xx status {low}:{low + 99}")
        for code in STATUS_CODES:
            if code // 100 == low // 100:
                acls.append(f"acl status_{code} status {code}")
                status.append(f"status_{code} counted_{status_gpc(code)}")
        status.append(f"status_{low // 100}xx counted_{low // 100 - 1}")
    # HAProxy's own answers are mostly 502, 503 and 504.
    made += [f"status_{code} counted_{status_gpc(code)} counted_6" for code in HAPROXY_CODES]
    for low in (500, 400, 200, 300, 100):
        made.append(f"status_{low // 100}xx counted_{low // 100 - 1} counted_6")
    low = 0
    for index, high in enumerate([*LATENCY_BOUNDS_MS, None]):
        gpc = FIRST_LATENCY_GPC + index
        acls.append(
            f"acl latency_{gpc} var(txn.latency_ms) -m int {f'{low}:{high}' if high is not None else f'ge {low}'}"
        )
        latency.append(f"latency_{gpc} counted_{gpc}")
        low = (high or 0) + 1
    for gpc in range(GPC_COUNT):
        if gpc != 5:
            acls.append(f"acl counted_{gpc} sc_inc_gpc({gpc},2) -m int gt 0")
    acls += [
        "acl answered_upstream var(txn.latency_ms) -m found",
        "acl went_upstream var(txn.sent_ms) -m found",
    ]
    return [
        *acls,
        # The status class counted on the way; TRUE: the latency is measured whatever the status.
        "http-response set-var(txn.latency_ms) date(0,ms),sub(txn.sent_ms) if "
        + " || ".join([*status, "TRUE"]),
        # The latency bucket counted on the way; TRUE: every answer is counted as answered.
        "http-response sc-inc-gpc(6,2) if " + " || ".join([*latency, "TRUE"]),
        # Counted above, or never sent upstream (counted by its own answer, or not at all): done.
        # Otherwise HAProxy answered it: its status class and answered, on the way.
        "http-after-response allow if answered_upstream || !went_upstream || " + " || ".join(made),
    ]


def global_lines() -> list[str]:
    return ['set-var-fmt proc.usage_gen "%[date(0,us),hex]"']


def table_section() -> list[str]:
    return kept_table(
        TABLE, f"type string len 300 size 1m expire 7d store gpc({GPC_COUNT}),bytes_in_cnt,bytes_out_cnt"
    )
