"""Counting the calls a gateway answers, in HAProxy, for billing and analytics.

Every request is counted once in the `usage_counts` stick table under `<route id>|<consumer>`
(route 0: no route matched; no consumer: anonymous), tracked on stick counter 2, with explicit
increments that tell a request answered from one still in flight:

- a request the gateway answers itself (401, 403, 404, 413, 429, a redirect, a mock, a CORS
  preflight): its status class, gpc(0..4) = 1xx..5xx, just before that answer;
- a request going upstream: gpc5 just before it goes; the upstream's answer adds its status class
  and gpc6. An answer HAProxy makes up on the way (502, 503, 504) runs no response rule: what
  went upstream without an answer (gpc5 - gpc6) for longer than any request may take, the agent
  counts as 5xx.

The agent reads the table's absolute counters and turns their growth into usage batches."""

from __future__ import annotations

import re

TABLE = "usage_counts"
KEY = "http-request set-var(txn.usage) var(txn.route),concat(|,txn.consumer)"
_ANSWER = re.compile(r"^(\s*)http-request (return|redirect) ")
_STATUS = re.compile(r"\b(?:status|code) (\d{3})\b")


def _condition(line: str) -> str | None:
    """What follows the line's ` if ` outside quotes, or None when it has none."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif line.startswith(" if ", index):
            return line[index + 4 :]
    return None


def count_answers(lines: list[str]) -> list[str]:
    """Each line that answers the request is preceded by the two that count it."""
    counted = []
    for line in lines:
        answer = _ANSWER.match(line)
        if answer:
            indent = answer.group(1)
            status = _STATUS.search(line)
            code = int(status.group(1)) if status else 302  # a redirect's default
            condition = _condition(line)
            suffix = f" if {condition}" if condition else ""
            counted += [
                f"{indent}http-request track-sc2 var(txn.usage) table {TABLE}{suffix}",
                f"{indent}http-request sc-inc-gpc({code // 100 - 1},2){suffix}",
            ]
        counted.append(line)
    return counted


def usage_lines() -> tuple[list[str], list[str], list[str]]:
    """(the key's first setting, after routing; the line tracking a request that goes upstream;
    the response lines counting the upstream's status class)."""
    key = [KEY, "http-request set-var(txn.usage) str(0|) if !{ var(txn.route) -m found }"]
    upstream = [f"http-request track-sc2 var(txn.usage) table {TABLE}", "http-request sc-inc-gpc(5,2)"]
    classes = [
        f"http-response sc-inc-gpc({index},2) if {{ status {low}:{low + 99} }}"
        for index, low in enumerate((100, 200, 300, 400, 500))
    ] + ["http-response sc-inc-gpc(6,2)"]
    return key, upstream, classes


def table_section() -> list[str]:
    return [
        f"backend {TABLE}",
        "    stick-table type string len 300 size 1m expire 7d store gpc(7),bytes_in_cnt,bytes_out_cnt",
    ]
