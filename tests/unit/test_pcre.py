"""gateway_agent.pcre: patterns checked as HAProxy 2.6 compiles them (libpcre2-8, JIT), and the
same verdicts as `haproxy -c` on a configuration using them."""

import shutil
import subprocess
from pathlib import Path

import pytest

from gateway_agent import pcre
from gateway_agent.directives import quote

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

# Python's `re` takes every one of these; HAProxy refuses them.
PYTHON_ONLY = [
    "(?u)/x",
    "(?L)/x",
    "(?a)/x",
    "^/\\N{LATIN SMALL LETTER A}$",
    "\\U0001F600",
    "\\u00e9",
    "(a)\\1",  # an ACL compiles without captures: group 1 does not exist
    "(?<=a+)b",  # Python refuses it too, for its own reason
]
# HAProxy takes every one of these; Python's `re` refuses most.
PCRE_ONLY = ["a++", "(?>ab|a)c", "\\p{L}+", "\\Qa(b\\E", "(?<n>a)\\k<n>", "(?|(a)|(b))", "\\N", "a{,3}"]


def test_the_library_is_the_one_haproxy_uses():
    assert pcre.ENGINE.startswith("pcre2 10."), pcre.ENGINE


@pytest.mark.parametrize("pattern", PYTHON_ONLY)
def test_what_pcre2_refuses_is_refused_with_its_message_and_position(pattern):
    with pytest.raises(pcre.RegexError) as refused:
        pcre.check(pattern)
    assert " at position " in str(refused.value)
    assert refused.value.offset is not None and 0 <= refused.value.offset <= len(pattern)


@pytest.mark.parametrize("pattern", PCRE_ONLY)
def test_what_pcre2_accepts_is_accepted(pattern):
    pcre.check(pattern)


def test_the_messages_are_pcre2s_own():
    with pytest.raises(pcre.RegexError, match=r"unrecognized character after \(\? or \(\?- at position 2"):
        pcre.check("(?u)/x")
    with pytest.raises(pcre.RegexError, match="reference to non-existent subpattern"):
        pcre.check("(a)\\1")
    with pytest.raises(pcre.RegexError, match="missing closing parenthesis at position 1"):
        pcre.check("(")


def test_captures_as_converters_and_actions_compile_them():
    pcre.check("(a)\\1", capture=True)  # regsub, replace-path
    pcre.check("(a)", caseless=True)
    with pytest.raises(pcre.RegexError):
        pcre.check("(?u)a", capture=True, caseless=True)


def test_the_position_counts_characters_not_bytes():
    with pytest.raises(pcre.RegexError) as refused:
        pcre.check("éé(")  # 4 bytes before the parenthesis, 2 characters
    assert refused.value.offset == 3


def test_a_nul_character_is_refused():
    with pytest.raises(pcre.RegexError, match="NUL"):
        pcre.check("a\x00b")


def test_without_the_library_pythons_re_stands_in(monkeypatch):
    monkeypatch.setattr(pcre, "_LIB", None)
    pcre._refusal.cache_clear()
    try:
        for pattern in ["(?u)/x", "(?L)x", "\\N{LATIN SMALL LETTER A}", "(", "\\u00e9"]:
            with pytest.raises(pcre.RegexError):
                pcre.check(pattern)
        pcre.check("^/v[0-9]+/items$")
    finally:
        pcre._refusal.cache_clear()


def _haproxy_accepts(patterns: list[str], folder: Path) -> bool:
    rules = "".join(f"    http-request deny if {{ path_reg -- {quote(p)} }}\n" for p in patterns)
    config = folder / "haproxy.cfg"
    config.write_text(
        "defaults\n    mode http\n    timeout client 1s\n    timeout server 1s\n    timeout connect 1s\n"
        f"frontend f\n    bind 127.0.0.1:9\n{rules}    default_backend b\nbackend b\n    server s 127.0.0.1:1\n"
    )
    return subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True).returncode == 0


def test_the_verdicts_are_haproxys(tmp_path):
    """What the check accepts, `haproxy -c` accepts in an ACL (all at once); what it refuses,
    `haproxy -c` refuses (one by one)."""
    assert _haproxy_accepts(PCRE_ONLY, tmp_path)
    for pattern in PYTHON_ONLY:
        assert not _haproxy_accepts([pattern], tmp_path), pattern
