"""A renderer of the part of Go's text/template (with Helm's and Sprig's functions) that the charts
in helm/ use, for tests: Helm is not installable on the build machines, and no maintained
pure-Python package renders Helm templates (PyPI has bindings of Go's engine, a CGo wrapper, and
clients that run the helm binary).

What it does as `helm template` does: values.yaml coalesced with the given values (maps merged
key by key, null removes a key) and validated against values.schema.json; numbers of the values
are float64, as Helm decodes them (so `toString` of 10 is "10", `toYaml` writes whole numbers
as integers, and `eq` of a value and an integer literal is an error); `.Release`, `.Chart`
(Chart.yaml with Helm's field names) and `.Template`; templates whose name starts with `_` only
define; the output split into YAML documents.

The subset: actions with `{{-`/`-}}` trimming and `{{/* */}}` comments; `if`/`else if`/`else`,
`range` (lists, maps in key order, `$v :=` and `$i, $v :=`), `with`/`else`, `define`,
`template`, `end`; pipelines, parenthesised pipelines, fields of `.`, `$` and variables,
`$x :=` and `$x =`; string, number, bool and nil literals; the functions in FUNCTIONS. Anything
else is a TemplateError naming the template and line, so a chart that starts using more fails
its tests here instead of rendering something Helm would not."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import yaml


class TemplateError(Exception):
    pass


# --- values --------------------------------------------------------------------------------------


def coalesce(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of user values over the chart's: maps merge key by key, anything else
    replaces, and null removes the key."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = coalesce(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _as_helm_numbers(value: Any) -> Any:
    """Values as Helm holds them: every number a float64 (JSON decoding)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {k: _as_helm_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_helm_numbers(v) for v in value]
    return value


# --- Go's formatting -----------------------------------------------------------------------------


def go_float(x: float) -> str:
    """fmt's %v of a float64: the shortest digits, %e from an exponent of -5 or 6 on."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1, x) < 0 else "0"
    sign, digits_t, exponent = Decimal(repr(x)).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digits_t))
    point = len(digits) + exponent  # the decimal point's place in digits
    minus = "-" if sign else ""
    exp10 = point - 1
    if exp10 < -4 or exp10 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{minus}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if point <= 0:
        return f"{minus}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{minus}{digits}{'0' * (point - len(digits))}"
    return f"{minus}{digits[:point]}.{digits[point:]}"


def go_value(value: Any) -> str:
    """fmt's %v."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, list):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value)) + "]"
    raise TemplateError(f"cannot format {value!r}")


def _output(value: Any) -> str:
    """What {{ pipeline }} writes (Helm writes nothing for a missing value)."""
    if value is None:
        return ""
    if isinstance(value, list | dict):
        raise TemplateError(f"writing a {type(value).__name__} as text: {value!r} (toYaml it)")
    return go_value(value)


def _truth(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool | int | float | str | list | dict):
        return bool(value)
    return True


def _empty(value: Any) -> bool:
    return not _truth(value)


# --- Sprig and Helm functions --------------------------------------------------------------------


def _to_int(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            return 0
    raise TemplateError(f"int of {value!r}")


def _whole_numbers(value: Any) -> Any:
    """toYaml goes through JSON: a float64 with no fraction is written as an integer."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


def to_yaml(value: Any) -> str:
    text = yaml.safe_dump(
        _whole_numbers(value), default_flow_style=False, sort_keys=True, allow_unicode=True, width=10**6
    )
    return text.removesuffix("\n...\n").removesuffix("\n")


def _indent(width: Any, text: Any) -> str:
    pad = " " * _to_int(width)
    return pad + str(text).replace("\n", "\n" + pad)


def _printf(form: str, *args: Any) -> str:
    values = iter(args)

    def verb(match: re.Match[str]) -> str:
        if match.group(1) == "%":
            return "%"
        value = next(values)
        if match.group(1) == "q":
            return json.dumps(str(value), ensure_ascii=False)
        if match.group(1) == "d":
            return str(_to_int(value)) if isinstance(value, int) else go_value(value)
        return go_value(value)

    return re.sub(r"%([sdvq%])", verb, form)


def _print(*args: Any) -> str:
    """fmt.Sprint: a space between two operands when neither is a string."""
    out = ""
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_value(arg)
    return out


def _trunc(n: Any, s: str) -> str:
    n = _to_int(n)
    if n < 0 and len(s) + n > 0:
        return s[len(s) + n :]
    return s[:n] if n >= 0 else s


def _kind(value: Any) -> str:
    if value is None:
        return "invalid"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "slice"
    if isinstance(value, dict):
        return "map"
    raise TemplateError(f"kind of {value!r}")


def _comparable(a: Any, b: Any) -> None:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return
    if isinstance(a, numbers) and isinstance(b, numbers) and type(a) is not type(b):
        raise TemplateError(f"incompatible types for comparison: {a!r} and {b!r}")
    if isinstance(a, numbers) != isinstance(b, numbers):
        raise TemplateError(f"incompatible types for comparison: {a!r} and {b!r}")


def _eq(a: Any, *others: Any) -> bool:
    for b in others:
        _comparable(a, b)
        if a == b:
            return True
    return False


def _order(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        _comparable(a, b)
        return op(a, b)

    return compare


def _dict(*pairs: Any) -> dict[str, Any]:
    if len(pairs) % 2:
        raise TemplateError("dict needs key and value pairs")
    return {str(pairs[i]): pairs[i + 1] for i in range(0, len(pairs), 2)}


def _concat(*lists: Any) -> list[Any]:
    out: list[Any] = []
    for item in lists:
        if not isinstance(item, list):
            raise TemplateError(f"Cannot concat type {_kind(item)} as list")
        out += item
    return out


def _join(separator: str, items: Any) -> str:
    """Sprig's join: each item as %v text (nil items left out), or the value itself as text."""
    if not isinstance(items, list):
        return go_value(items)
    return str(separator).join(go_value(item) for item in items if item is not None)


def _first(items: Any) -> Any:
    if not isinstance(items, list):
        raise TemplateError(f"Cannot find first on type {_kind(items)}")
    return items[0] if items else None


def _required(message: str, value: Any) -> Any:
    if value is None or value == "":
        raise TemplateError(f"required: {message}")
    return value


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "default": lambda d, *given: d if not given or _empty(given[0]) else given[0],
    "empty": _empty,
    "trunc": _trunc,
    "trimSuffix": lambda suffix, s: str(s).removesuffix(suffix),
    "trimPrefix": lambda prefix, s: str(s).removeprefix(prefix),
    "contains": lambda sub, s: sub in s,
    "replace": lambda old, new, s: str(s).replace(old, new),
    "printf": _printf,
    "print": _print,
    "quote": lambda *args: " ".join(
        json.dumps(v if isinstance(v, str) else go_value(v), ensure_ascii=False)
        for v in args
        if v is not None
    ),
    "int": _to_int,
    "toString": lambda v: v if isinstance(v, str) else go_value(v),
    "toYaml": to_yaml,
    "nindent": lambda n, s: "\n" + _indent(n, s),
    "indent": _indent,
    "sha256sum": lambda s: hashlib.sha256(str(s).encode()).hexdigest(),
    "b64enc": lambda s: base64.b64encode(str(s).encode()).decode(),
    "ternary": lambda yes, no, condition: yes if _truth(condition) else no,
    "kindIs": lambda kind, v: _kind(v) == kind,
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": _order(lambda a, b: a < b),
    "le": _order(lambda a, b: a <= b),
    "gt": _order(lambda a, b: a > b),
    "ge": _order(lambda a, b: a >= b),
    "not": lambda v: not _truth(v),
    "dict": _dict,
    "list": lambda *items: list(items),
    "concat": _concat,
    "join": _join,
    "first": _first,
    "required": _required,
}
LAZY = {"and", "or", "include"}  # evaluated by the engine: short-circuit, or a template's output


# --- lexing and parsing --------------------------------------------------------------------------

ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
TOKEN = re.compile(
    r"""(?P<space>\s+)
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<raw>`[^`]*`)
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
    | (?P<decl>:=)
    | (?P<assign>=)
    | (?P<pipe>\|)
    | (?P<lparen>\()
    | (?P<rparen>\))
    | (?P<comma>,)
    | (?P<var>\$[A-Za-z0-9_]*)
    | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)""",
    re.VERBOSE,
)
KEYWORDS = {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}


@dataclass
class Token:
    kind: str
    text: str
    spaced: bool  # whitespace before it: `$x .a` is two operands, `$x.a` one


@dataclass
class Pipeline:
    commands: list[list[Any]]  # each a list of operands; an operand is a tuple node
    declare: list[str] = field(default_factory=list)
    assign: bool = False  # `=` rather than `:=`


@dataclass
class Where:
    template: str
    line: int

    def __str__(self) -> str:
        return f"{self.template}:{self.line}"


def _tokens(text: str, where: Where) -> list[Token]:
    out: list[Token] = []
    position, spaced = 0, True
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None:
            raise TemplateError(f"{where}: cannot read {text[position:]!r}")
        kind = match.lastgroup
        assert kind is not None
        if kind == "space":
            spaced = True
        else:
            out.append(Token(kind, match.group(), spaced))
            spaced = False
        position = match.end()
    return out


class _Parser:
    """A pipeline from an action's tokens."""

    def __init__(self, tokens: list[Token], where: Where) -> None:
        self.tokens, self.i, self.where = tokens, 0, where

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise TemplateError(f"{self.where}: unexpected end of action")
        self.i += 1
        return token

    def pipeline(self, declarations: bool = True) -> Pipeline:
        declare: list[str] = []
        assign = False
        if declarations:
            # `$x :=`, `$x =`, `$i, $v :=`
            j = self.i
            names = []
            while j < len(self.tokens) and self.tokens[j].kind == "var":
                names.append(self.tokens[j].text)
                j += 1
                if j < len(self.tokens) and self.tokens[j].kind == "comma":
                    j += 1
                    continue
                break
            if names and j < len(self.tokens) and self.tokens[j].kind in ("decl", "assign"):
                declare, assign = names, self.tokens[j].kind == "assign"
                self.i = j + 1
        commands = [self.command()]
        while (token := self.peek()) is not None and token.kind == "pipe":
            self.take()
            commands.append(self.command())
        return Pipeline(commands, declare, assign)

    def command(self) -> list[Any]:
        operands: list[Any] = []
        while (token := self.peek()) is not None and token.kind not in ("pipe", "rparen"):
            operands.append(self.operand())
        if not operands:
            raise TemplateError(f"{self.where}: empty command")
        return operands

    def operand(self) -> tuple[Any, ...]:
        token = self.take()
        node: tuple[Any, ...]
        if token.kind == "string":
            node = ("literal", json.loads(token.text))
        elif token.kind == "raw":
            node = ("literal", token.text[1:-1])
        elif token.kind == "number":
            number = token.text
            node = ("literal", float(number) if any(c in number for c in ".eE") else int(number))
        elif token.kind == "ident":
            if token.text in ("true", "false"):
                node = ("literal", token.text == "true")
            elif token.text == "nil":
                node = ("literal", None)
            else:
                if token.text not in FUNCTIONS and token.text not in LAZY:
                    raise TemplateError(f"{self.where}: function {token.text!r} not defined here")
                node = ("function", token.text)
        elif token.kind == "var":
            node = ("variable", token.text)
        elif token.kind == "field":
            return ("field", ("dot",), [n for n in token.text.split(".") if n])
        elif token.kind == "lparen":
            inner = self.pipeline(declarations=False)
            if self.take().kind != "rparen":
                raise TemplateError(f"{self.where}: unclosed (")
            node = ("pipeline", inner)
        else:
            raise TemplateError(f"{self.where}: unexpected {token.text!r}")
        following = self.peek()
        if following is not None and following.kind == "field" and not following.spaced:
            self.take()
            return ("field", node, [n for n in following.text.split(".") if n])
        return node


@dataclass
class _Node:
    kind: str  # text, output, if, range, with, template
    where: Where
    text: str = ""
    pipeline: Pipeline | None = None
    body: list[_Node] = field(default_factory=list)
    otherwise: list[_Node] = field(default_factory=list)
    name: str = ""


def _items(source: str, name: str) -> Iterator[tuple[str, str, Where]]:
    """("text", text) and ("action", body) in order, trimming done."""
    pieces: list[list[Any]] = []
    position = 0
    for match in ACTION.finditer(source):
        pieces.append(["text", source[position : match.start()], None])
        line = source.count("\n", 0, match.start()) + 1
        pieces.append(["action", match.group(2).strip(), Where(name, line), match.group(1), match.group(3)])
        position = match.end()
    pieces.append(["text", source[position:], None])
    for i, piece in enumerate(pieces):
        if piece[0] != "action":
            continue
        if piece[3] and pieces[i - 1][0] == "text":
            pieces[i - 1][1] = pieces[i - 1][1].rstrip(" \t\r\n")
        if piece[4] and pieces[i + 1][0] == "text":
            pieces[i + 1][1] = pieces[i + 1][1].lstrip(" \t\r\n")
    for piece in pieces:
        if piece[0] == "text":
            if piece[1]:
                yield "text", piece[1], Where(name, 0)
        elif not (piece[1].startswith("/*") and piece[1].endswith("*/")):
            yield "action", piece[1], piece[2]


def parse(source: str, name: str, defines: dict[str, list[_Node]]) -> list[_Node]:
    """The template's nodes; its `define`s go into defines."""
    items = list(_items(source, name))
    position = 0

    def block(stop: set[str]) -> tuple[list[_Node], str, list[Token], Where]:
        nonlocal position
        nodes: list[_Node] = []
        while position < len(items):
            kind, text, where = items[position]
            position += 1
            if kind == "text":
                nodes.append(_Node("text", where, text=text))
                continue
            tokens = _tokens(text, where)
            keyword = tokens[0].text if tokens and tokens[0].kind == "ident" else ""
            if keyword in stop:
                return nodes, keyword, tokens[1:], where
            if keyword in ("if", "with", "range"):
                nodes.append(control(keyword, tokens[1:], where))
            elif keyword == "define":
                if len(tokens) != 2 or tokens[1].kind != "string":
                    raise TemplateError(f"{where}: define needs a name")
                body, _, _, _ = block({"end"})
                defines[json.loads(tokens[1].text)] = body
            elif keyword == "template":
                if len(tokens) < 2 or tokens[1].kind != "string":
                    raise TemplateError(f"{where}: template needs a name")
                argument = _Parser(tokens[2:], where).pipeline(False) if len(tokens) > 2 else None
                nodes.append(_Node("template", where, name=json.loads(tokens[1].text), pipeline=argument))
            elif keyword in KEYWORDS:
                raise TemplateError(f"{where}: {keyword!r} is not supported here (or is misplaced)")
            else:
                parser = _Parser(tokens, where)
                pipeline = parser.pipeline()
                if parser.peek() is not None:
                    raise TemplateError(f"{where}: unexpected {parser.peek()}")
                nodes.append(_Node("output", where, pipeline=pipeline))
        if stop:
            raise TemplateError(f"{name}: missing {{{{ end }}}}")
        return nodes, "", [], Where(name, 0)

    def control(keyword: str, tokens: list[Token], where: Where) -> _Node:
        parser = _Parser(tokens, where)
        node = _Node(keyword, where, pipeline=parser.pipeline(declarations=keyword != "if"))
        node.body, ending, rest, at = block({"else", "end"})
        if ending == "else":
            if rest and rest[0].text == "if" and keyword == "if":
                node.otherwise = [control("if", rest[1:], at)]  # its `end` is this one's
            elif rest:
                raise TemplateError(f"{at}: else {rest[0].text} is not supported here")
            else:
                node.otherwise, _, _, _ = block({"end"})
        return node

    nodes, _, _, _ = block(set())
    return nodes


# --- execution -----------------------------------------------------------------------------------


class _Scope:
    def __init__(self, root: Any) -> None:
        self.frames: list[dict[str, Any]] = [{"$": root}]

    def get(self, name: str, where: Where) -> Any:
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        raise TemplateError(f"{where}: undefined variable {name}")

    def set(self, name: str, value: Any, where: Where) -> None:
        for frame in reversed(self.frames):
            if name in frame:
                frame[name] = value
                return
        raise TemplateError(f"{where}: assignment to undeclared variable {name}")


class Engine:
    def __init__(self, defines: dict[str, list[_Node]]) -> None:
        self.defines = defines
        self.depth = 0

    def execute(self, nodes: list[_Node], dot: Any) -> str:
        out: list[str] = []
        self._run(nodes, dot, _Scope(dot), out)
        return "".join(out)

    def include(self, name: str, dot: Any, where: Where) -> str:
        if name not in self.defines:
            raise TemplateError(f"{where}: no template {name!r}")
        self.depth += 1
        if self.depth > 100:
            raise TemplateError(f"{where}: includes nest too deep")
        try:
            return self.execute(self.defines[name], dot)
        finally:
            self.depth -= 1

    def _run(self, nodes: list[_Node], dot: Any, scope: _Scope, out: list[str]) -> None:
        for node in nodes:
            if node.kind == "text":
                out.append(node.text)
                continue
            assert node.pipeline is not None or node.kind == "template"
            if node.kind == "output":
                assert node.pipeline is not None
                value = self._pipeline(node.pipeline, dot, scope, node.where)
                if not node.pipeline.declare:
                    out.append(_output(value))
            elif node.kind == "template":
                argument = self._pipeline(node.pipeline, dot, scope, node.where) if node.pipeline else None
                out.append(self.include(node.name, argument, node.where))
            elif node.kind in ("if", "with"):
                assert node.pipeline is not None
                scope.frames.append({})
                try:
                    value = self._pipeline(node.pipeline, dot, scope, node.where)
                    if _truth(value):
                        self._run(node.body, value if node.kind == "with" else dot, scope, out)
                    else:
                        self._run(node.otherwise, dot, scope, out)
                finally:
                    scope.frames.pop()
            elif node.kind == "range":
                self._range(node, dot, scope, out)

    def _range(self, node: _Node, dot: Any, scope: _Scope, out: list[str]) -> None:
        assert node.pipeline is not None
        names = node.pipeline.declare
        pipeline = Pipeline(node.pipeline.commands)
        value = self._pipeline(pipeline, dot, scope, node.where)
        if value is None:
            pairs: list[tuple[Any, Any]] = []
        elif isinstance(value, list):
            pairs = list(enumerate(value))
        elif isinstance(value, dict):
            pairs = [(k, value[k]) for k in sorted(value)]
        else:
            raise TemplateError(f"{node.where}: range can't iterate over {value!r}")
        if not pairs:
            scope.frames.append({})
            try:
                self._run(node.otherwise, dot, scope, out)
            finally:
                scope.frames.pop()
            return
        for key, item in pairs:
            frame: dict[str, Any] = {}
            if len(names) == 1:
                frame[names[0]] = item
            elif len(names) == 2:
                frame[names[0]], frame[names[1]] = key, item
            scope.frames.append(frame)
            try:
                self._run(node.body, item, scope, out)
            finally:
                scope.frames.pop()

    def _pipeline(self, pipeline: Pipeline, dot: Any, scope: _Scope, where: Where) -> Any:
        value: Any = None
        for i, command in enumerate(pipeline.commands):
            value = self._command(command, dot, scope, where, piped=(value,) if i else ())
        for name in pipeline.declare:
            if pipeline.assign:
                scope.set(name, value, where)
            else:
                scope.frames[-1][name] = value
        return value

    def _command(
        self, command: list[Any], dot: Any, scope: _Scope, where: Where, piped: tuple[Any, ...]
    ) -> Any:
        head = command[0]
        if head[0] != "function":
            if len(command) > 1 or piped:
                raise TemplateError(f"{where}: can't give arguments to a non-function {head}")
            return self._operand(head, dot, scope, where)
        return self._call(head[1], command[1:], dot, scope, where, piped)

    def _call(
        self, name: str, args: list[Any], dot: Any, scope: _Scope, where: Where, piped: tuple[Any, ...]
    ) -> Any:
        def values() -> Iterator[Any]:
            for arg in args:
                yield self._operand(arg, dot, scope, where)
            yield from piped

        if name == "and" or name == "or":
            last: Any = None
            for last in values():
                if _truth(last) != (name == "and"):
                    return last
            return last
        evaluated = list(values())
        if name == "include":
            if len(evaluated) != 2:
                raise TemplateError(f"{where}: include takes a name and a value")
            return self.include(evaluated[0], evaluated[1], where)
        try:
            return FUNCTIONS[name](*evaluated)
        except TemplateError as exc:
            raise TemplateError(f"{where}: {name}: {exc}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise TemplateError(f"{where}: {name}{tuple(evaluated)!r}: {exc}") from None

    def _operand(self, node: tuple[Any, ...], dot: Any, scope: _Scope, where: Where) -> Any:
        kind = node[0]
        if kind == "literal":
            return node[1]
        if kind == "dot":
            return dot
        if kind == "variable":
            return scope.get(node[1], where)
        if kind == "function":
            return self._call(node[1], [], dot, scope, where, ())
        if kind == "pipeline":
            return self._pipeline(node[1], dot, scope, where)
        if kind == "field":
            value = self._operand(node[1], dot, scope, where)
            for name in node[2]:
                if not isinstance(value, dict):
                    raise TemplateError(f"{where}: nil pointer evaluating {value!r}.{name}")
                value = value.get(name)
            return value
        raise TemplateError(f"{where}: cannot evaluate {node}")


# --- a chart -------------------------------------------------------------------------------------

CHART_FIELDS = {
    "apiVersion": "APIVersion",
    "name": "Name",
    "version": "Version",
    "appVersion": "AppVersion",
    "description": "Description",
    "type": "Type",
    "keywords": "Keywords",
    "kubeVersion": "KubeVersion",
}
DOCUMENT = re.compile(r"^---\s*$", re.MULTILINE)


@dataclass
class Chart:
    root: Path

    def values(self, overlay: dict[str, Any] | None = None) -> dict[str, Any]:
        """values.yaml with overlay, validated by values.schema.json as `helm install` does."""
        values = coalesce(yaml.safe_load((self.root / "values.yaml").read_text()), overlay or {})
        schema_path = self.root / "values.schema.json"
        if schema_path.exists():
            errors = list(jsonschema.Draft7Validator(json.loads(schema_path.read_text())).iter_errors(values))
            if errors:
                raise TemplateError(
                    "values don't meet the specifications of the schema: "
                    + "; ".join(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
                )
        return values

    def render(
        self,
        overlay: dict[str, Any] | None = None,
        release: str = "gateway",
        namespace: str = "default",
        service: str = "Helm",
    ) -> dict[str, str]:
        """Each template's output (NOTES.txt included), by its path under the chart."""
        meta = yaml.safe_load((self.root / "Chart.yaml").read_text())
        chart = {CHART_FIELDS.get(k, k[:1].upper() + k[1:]): v for k, v in meta.items()}
        templates = sorted((self.root / "templates").iterdir())
        defines: dict[str, list[_Node]] = {}
        parsed = {
            path.name: parse(path.read_text(), f"{self.root.name}/templates/{path.name}", defines)
            for path in templates
        }
        for name, nodes in parsed.items():  # each file is a template too, named by its path
            defines[f"{self.root.name}/templates/{name}"] = nodes
        engine = Engine(defines)
        top = {
            "Values": _as_helm_numbers(self.values(overlay)),
            "Release": {
                "Name": release,
                "Namespace": namespace,
                "Service": service,
                "IsInstall": True,
                "IsUpgrade": False,
                "Revision": 1,
            },
            "Chart": chart,
            "Capabilities": {"KubeVersion": {"Version": "v1.31.0", "Major": "1", "Minor": "31"}},
        }
        rendered = {}
        for name, nodes in parsed.items():
            if name.startswith("_"):
                continue
            context = {
                **top,
                "Template": {
                    "Name": f"{self.root.name}/templates/{name}",
                    "BasePath": f"{self.root.name}/templates",
                },
            }
            rendered[f"templates/{name}"] = engine.execute(nodes, context)
        return rendered

    def manifests(self, overlay: dict[str, Any] | None = None, **release: str) -> list[dict[str, Any]]:
        """The Kubernetes objects, parsed, in template order."""
        objects = []
        for name, text in self.render(overlay, **release).items():
            if not name.endswith((".yaml", ".yml")):
                continue
            for document in DOCUMENT.split(text):
                try:
                    loaded = yaml.safe_load(document)
                except yaml.YAMLError as exc:
                    raise TemplateError(f"{name} renders invalid YAML: {exc}\n{document}") from None
                if loaded is None:
                    continue
                if not isinstance(loaded, dict) or "kind" not in loaded:
                    raise TemplateError(f"{name} renders something that is not an object:\n{document}")
                objects.append(loaded)
        return objects
