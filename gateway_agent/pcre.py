"""Regular expressions checked the way HAProxy compiles them: through libpcre2-8.

HAProxy 2.6 built with USE_PCRE2 and USE_PCRE2_JIT (as Debian's and the gateway image's are)
compiles every regex of its configuration in `regex_comp` (src/regex.c):

    flags = (cs ? 0 : PCRE2_CASELESS) | (cap ? 0 : PCRE2_NO_AUTO_CAPTURE);
    code = pcre2_compile(str, PCRE2_ZERO_TERMINATED, flags, &errn, &erroffset, NULL);
    jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    if (jit < 0 && jit != PCRE2_ERROR_JIT_BADOPTION)  -> refused

An ACL's patterns (`path_reg`, `-m reg`) are compiled without captures (`cap` = 0: a
back-reference to a numbered group is refused there), converters and actions (`regsub`,
`replace-path`) with them. No UTF mode: the pattern's UTF-8 bytes are single code units, so
`\\N{U+...}`, `(?u)`, `(?L)` and Python's other extensions are refused as HAProxy refuses them.

The library is the one HAProxy itself loads, found by `ctypes.util.find_library("pcre2-8")` or its
soname. Without it, Python's `re` and a list of the escapes PCRE2 lacks stand in (`ENGINE` says
which): close, not exact, and the agent still runs `haproxy -c` before any reload."""

from __future__ import annotations

import ctypes
import ctypes.util
import re
from functools import lru_cache

__all__ = ["ENGINE", "RegexError", "check"]

SONAME = "libpcre2-8.so.0"
PCRE2_CASELESS = 0x00000008
PCRE2_NO_AUTO_CAPTURE = 0x00002000
PCRE2_JIT_COMPLETE = 0x00000001
PCRE2_ERROR_JIT_BADOPTION = -45
PCRE2_CONFIG_VERSION = 11


class RegexError(ValueError):
    """HAProxy would refuse the pattern; `offset` is the character the compiler stopped at."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


def _load() -> ctypes.CDLL | None:
    for name in (ctypes.util.find_library("pcre2-8"), SONAME):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.pcre2_compile_8.restype = ctypes.c_void_p
        lib.pcre2_compile_8.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint32,
            ctypes.POINTER(ctypes.c_int),
            ctypes.POINTER(ctypes.c_size_t),
            ctypes.c_void_p,
        ]
        lib.pcre2_jit_compile_8.restype = ctypes.c_int
        lib.pcre2_jit_compile_8.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.pcre2_code_free_8.restype = None
        lib.pcre2_code_free_8.argtypes = [ctypes.c_void_p]
        lib.pcre2_get_error_message_8.restype = ctypes.c_int
        lib.pcre2_get_error_message_8.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
        lib.pcre2_config_8.restype = ctypes.c_int
        lib.pcre2_config_8.argtypes = [ctypes.c_uint32, ctypes.c_void_p]
        return lib
    return None


_LIB = _load()


def _version() -> str:
    if _LIB is None:
        return ""
    buffer = ctypes.create_string_buffer(64)
    _LIB.pcre2_config_8(PCRE2_CONFIG_VERSION, buffer)
    return buffer.value.decode()


# What checks patterns here: "pcre2 10.42", or the stand-in when the library is missing.
ENGINE = f"pcre2 {_version()}" if _LIB is not None else "python re (libpcre2-8 not found)"


def _message(code: int) -> str:
    assert _LIB is not None
    buffer = ctypes.create_string_buffer(256)
    _LIB.pcre2_get_error_message_8(code, buffer, len(buffer))
    return buffer.value.decode(errors="replace")


def _check_pcre2(lib: ctypes.CDLL, pattern: str, flags: int) -> None:
    data = pattern.encode()
    error, offset = ctypes.c_int(), ctypes.c_size_t()
    code = lib.pcre2_compile_8(data, len(data), flags, ctypes.byref(error), ctypes.byref(offset), None)
    if not code:
        at = len(data[: offset.value].decode(errors="ignore"))  # bytes to characters
        raise RegexError(f"{_message(error.value)} at position {at}", at)
    try:
        jit = lib.pcre2_jit_compile_8(code, PCRE2_JIT_COMPLETE)
    finally:
        lib.pcre2_code_free_8(code)
    if jit < 0 and jit != PCRE2_ERROR_JIT_BADOPTION:
        raise RegexError(f"JIT compilation failed: {_message(jit)}")


# Python's `re` takes these; PCRE2 (without UTF mode) does not.
_PYTHON_ONLY = re.compile(r"\\[NLlUu]|\(\?[aLu]")


def _check_python(pattern: str, flags: int) -> None:
    try:
        re.compile(pattern, re.IGNORECASE if flags & PCRE2_CASELESS else 0)
    except re.error as exc:
        raise RegexError(str(exc), exc.pos) from None
    unsupported = _PYTHON_ONLY.search(pattern)
    if unsupported:
        raise RegexError(
            f"{unsupported.group()} is not supported by the gateway's regex engine", unsupported.start()
        )


@lru_cache(maxsize=16384)
def _refusal(pattern: str, flags: int) -> tuple[str, int | None] | None:
    """Why the pattern is refused and where, or None; cached, snapshots repeat their patterns."""
    try:
        if _LIB is not None:
            _check_pcre2(_LIB, pattern, flags)
        else:
            _check_python(pattern, flags)
    except RegexError as exc:
        return str(exc), exc.offset
    return None


def check(pattern: str, *, capture: bool = False, caseless: bool = False) -> None:
    """Raise RegexError when HAProxy would refuse `pattern`. `capture`: compiled with its groups
    captured, as converters and actions are (`regsub`, `replace-path`); ACL patterns are not.
    `caseless`: an ACL's `-i`."""
    if "\x00" in pattern:  # HAProxy reads the pattern as a C string
        raise RegexError("a NUL character cannot be part of a pattern", pattern.index("\x00"))
    flags = (PCRE2_CASELESS if caseless else 0) | (0 if capture else PCRE2_NO_AUTO_CAPTURE)
    refusal = _refusal(pattern, flags)
    if refusal is not None:
        raise RegexError(*refusal)
