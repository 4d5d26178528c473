"""What the renderer and every plugin share: render options, quoting, the JSON error answer,
and the per-group condition. Defined once so every plugin answers in the same shape."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RenderOptions:
    http_port: int = 8080
    https_port: int | None = 8443
    metrics_port: int | None = 9101
    bind_address: str = "*"
    # Absolute folder the files are written to: HAProxy reads maps and certificates from it.
    config_dir: str = "/var/lib/gateway-agent/current"
    runtime_socket: str = "/run/gateway-agent/haproxy.sock"
    # None lets HAProxy size it from the file-descriptor limit it runs under.
    maxconn: int | None = None


class RenderError(ValueError):
    """The snapshot cannot be turned into a configuration (and must not replace the running one)."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def quote(value: str) -> str:
    """One HAProxy argument. Single quotes take everything literally (no `$` expansion, no
    escapes); a value holding a single quote goes in double quotes with \\, " and $ escaped.
    Control characters are refused: a newline would end the directive and start another."""
    if _CONTROL.search(value):
        raise RenderError(f"Control characters are not allowed in {value!r}.")
    if "'" not in value:
        return "'" + value + "'"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


# What HAProxy's argument reader (between a fetch's or converter's parentheses) reads specially.
_ARGUMENT_SPECIAL = re.compile(r"[,()'\"\\]")


def argument(value: str) -> str:
    """A user's text as the argument of a sample fetch or converter written in a bare word
    (`req.hdr(<here>)`, `url_param(<here>)`). HAProxy reads it twice: the line's words, then the
    arguments between the parentheses, where `,` and `)` end an argument and quotes and `\\`
    are read again. Text holding none of those is quoted once, for the line; other text goes in
    double quotes for the argument reader first."""
    if _ARGUMENT_SPECIAL.search(value):
        value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return quote(value)


def patterns(values: list[str]) -> str:
    """Patterns of an ACL, each quoted. HAProxy reads a pattern starting with `-` as a flag
    (`-f <file>` would load a file) unless `--` comes first; a pattern `}` would end the braced
    condition, whatever its quotes: it is refused."""
    quoted, flag = [], False
    for value in values:
        if not value or value == "}":
            raise RenderError(f"{value!r} cannot be a pattern of a condition.")
        flag = flag or value[0] == "-"
        quoted.append(quote(value))
    if not quoted:
        raise RenderError("An ACL needs at least one pattern.")
    return " ".join(["--", *quoted] if flag else quoted)


# HAProxy 2.6 reads at most 64 words a line (MAX_LINE_ARGS) and refuses a longer one.
MAX_WORDS = 64
# The pieces HAProxy's line reader sees: quoted text, an escaped character, blanks, a comment's
# start, anything else. Quotes and escapes belong to the word they are in.
_TOKEN = re.compile(r"""'[^']*'?|"(?:\\[\s\S]|[^"\\])*"?|\\[\s\S]?|[ \t]+|#|[^\s'"\\#]+""")


def words(line: str) -> int:
    """How many words HAProxy reads in `line` (up to an unquoted #, which starts a comment)."""
    count, in_word = 0, False
    for token in _TOKEN.findall(line):
        if token[0] in " \t":
            in_word = False
        elif token == "#":
            break
        elif not in_word:
            count, in_word = count + 1, True
    return count


def condition_of(line: str) -> str | None:
    """What follows the line's ` if ` outside quotes (its condition), or None without one."""
    for token in _TOKEN.finditer(line):
        if token.group() == "#":
            return None
        if token.group()[0] == " " and line.startswith(" if ", token.start()):
            return line[token.start() + 4 :]
    return None


def unquoted(line: str) -> str:
    """The line with its quoted text (and escaped characters) left out."""
    return "".join(token for token in _TOKEN.findall(line) if token[0] not in "'\"\\")


def too_long(line: str) -> bool:
    """More words than HAProxy reads in a line; most lines are told by their blanks alone."""
    return line.count(" ") + line.count("\t") >= MAX_WORDS and words(line) > MAX_WORDS


def literal(value: str) -> str:
    """A user's text where HAProxy expects a log-format string (header values, redirect
    locations): `%` would start a sample expression, so it is doubled."""
    return quote(value.replace("%", "%%"))


def json_body(error: str, message: str) -> str:
    return json.dumps({"error": error, "message": message}, separators=(",", ":"))


def deny(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> str:
    """`http-request return` with the one JSON error shape every plugin answers with.
    Header values are log-format: the caller passes them ready (quoted or %[...])."""
    extra = "".join(f" hdr {name} {value}" for name, value in (headers or {}).items())
    return (
        f"http-request return status {status} content-type application/json "
        f"string {quote(json_body(error, message))}{extra}"
    )


REFUSAL_VAR = "txn.refusal"


def expression(text: str) -> str:
    """A sample expression as one HAProxy word, for expressions whose converter arguments need
    quotes of their own (regular expressions, separators): the word goes in double quotes, and
    the arguments inside it in single quotes, which HAProxy reads literally."""
    if _CONTROL.search(text.replace("\n", "").replace("\r", "")):
        raise RenderError(f"Control characters are not allowed in {text!r}.")
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r") + '"'


def refuse_if(message: str, condition: str) -> str:
    """Records why a plugin refuses the request when `condition` holds; `deny_refused` answers
    once for all of a plugin's checks, so a check costs one rule instead of two (its tracking
    and its answer). The last check that holds names the reason: a plugin writes its checks from
    the least fundamental to the most."""
    text = json.dumps(message)[1:-1]
    # A single quote: in double quotes for the argument reader, which reads \\ and " there.
    quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"' if "'" in text else f"'{text}'"
    reason = expression(f"str({quoted})")
    return f"http-request set-var({REFUSAL_VAR}) {reason} if {condition}"


def deny_computed(status: int, error: str, message: str) -> str:
    """`http-request return` in the one JSON shape, its message the sample expression `message`
    evaluated for the request: one rule answers for several reasons."""
    body = json_body(error, "@").replace('"@"', f'"%[{message}]"')
    return f"http-request return status {status} content-type application/json lf-string {quote(body)}"


def deny_refused(status: int, error: str) -> str:
    """The answer to a request a plugin's `refuse_if` checks refused, in the one JSON shape."""
    return f"{deny_computed(status, error, f'var({REFUSAL_VAR})')} if {{ var({REFUSAL_VAR}) -m found }}"


def kept_table(ref: str, definition: str) -> list[str]:
    """A stick table that outlives its worker, `ref` being `<section>/<table>` as rules name it.
    It is declared in a peers section, which a stopping worker leaves alone (a proxy's table is
    purged as soon as its entries are unused), so the agent can still read it through its
    session on that worker after a reload. The section is `disabled`: synchronising would queue
    every update for a peer that nobody reads, about 2,000 instructions a request."""
    section, table = ref.split("/")
    return [f"peers {section}", "    disabled", f"    table {table} {definition}"]


def when(var: str, group: str) -> str:
    """The condition "this request's route (or consumer) uses setting `group` of a plugin"."""
    return f"{{ var(txn.{var}) -m str {group} }}"


@dataclass
class PluginRules:
    """What one plugin adds to the configuration for its groups of settings."""

    request: list[str] = field(default_factory=list)  # http-request lines of the gateway frontend
    response: list[str] = field(default_factory=list)  # http-response lines
    sections: list[list[str]] = field(default_factory=list)  # backends holding stick tables, userlists
    files: dict[str, str] = field(default_factory=dict)  # maps and pattern files, by relative path
    globals: list[str] = field(default_factory=list)  # lines of the global section (tune settings)


def pattern_file(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def group_file(options: RenderOptions, kind: str, group: str) -> tuple[str, str]:
    """(relative path, absolute path) of an ACL pattern file of one group of a plugin. Not under
    maps/: the runtime API swaps maps, and a changed pattern list goes through a reload."""
    relative = f"acl/{kind}_{group}.lst"
    return relative, f"{options.config_dir}/{relative}"


Settings = dict[str, dict[str, Any]]  # group name -> the plugin's config shared by that group
