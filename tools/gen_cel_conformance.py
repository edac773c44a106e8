"""Generate tests/expr/data/cel_conformance.json from the public CEL
conformance files (protobuf text format, cel.expr.conformance.test.SimpleTestFile).

    python tools/gen_cel_conformance.py [CEL_SPEC_DIR] [OUT]

CEL_SPEC_DIR defaults to ../shared/conformance/cel-spec beside the repository
root, OUT to tests/expr/data/cel_conformance.json. The output is a faithful,
schema-free translation: every test keeps its section, name, expression,
declarations, bindings and expected outcome; deciding what edgeward can run is
the test's job (tests/expr/test_conformance.py), not the generator's.

Values are tagged JSON objects with exactly one key:
``{"null": null}``, ``{"bool": b}``, ``{"int": n}``, ``{"uint": n}``,
``{"double": x | "inf" | "-inf" | "nan"}``, ``{"string": s}``,
``{"bytes": hex}``, ``{"list": [v...]}``, ``{"map": [[k, v]...]}``,
``{"type": name}``, ``{"timestamp": [seconds, nanos]}``,
``{"duration": [seconds, nanos]}``, ``{"object": type_url}`` (a protobuf
message, not expressible here). Types are strings in the `Env` syntax
(``"int"``, ``"list(string)"``, ``"map(string, int)"``), or
``"message:<full name>"``.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = ROOT / ".." / "shared" / "conformance" / "cel-spec"
DEFAULT_OUT = ROOT / "tests" / "expr" / "data" / "cel_conformance.json"
FILES = (
    "basic",
    "comparisons",
    "logic",
    "integer_math",
    "fp_math",
    "string",
    "string_ext",
    "lists",
    "macros",
    "conversions",
    "timestamps",
    "fields",
)

# --- protobuf text format -------------------------------------------------------

Message = dict[str, list[Any]]  # field name -> values in order (repeated or not)

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<ext>\[[A-Za-z0-9_./]+\])
  | (?P<number>-?(?:inf(?:inity)?|nan|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fFuU]?)(?![\w.]))
  | (?P<ident>-?[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}:<>\[\],;])
    """,
    re.VERBOSE | re.IGNORECASE,
)

_ESCAPES = {
    "a": 7,
    "b": 8,
    "f": 12,
    "n": 10,
    "r": 13,
    "t": 9,
    "v": 11,
    "\\": 92,
    "'": 39,
    '"': 34,
    "?": 63,
}


def _unquote(literal: str) -> bytes:
    """The bytes of a text-format string literal (C escapes, octal, hex)."""
    body = literal[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode()
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1 :])
            assert m
            out.append(int(m.group(), 8))
            i += 1 + len(m.group())
        elif nxt in "xX":
            m = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2 :])
            assert m
            out.append(int(m.group(), 16))
            i += 2 + len(m.group())
        elif nxt in "uU":
            n = 4 if nxt == "u" else 8
            out += chr(int(body[i + 2 : i + 2 + n], 16)).encode()
            i += 2 + n
        else:
            raise ValueError(f"unknown escape \\{nxt} in {literal}")
    return bytes(out)


class _Reader:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m:
                raise ValueError(f"bad text proto at {text[pos : pos + 40]!r}")
            pos = m.end()
            kind = m.lastgroup
            assert kind
            if kind != "ws":
                self.tokens.append((kind, m.group()))
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def message(self, close: str | None) -> Message:
        msg: Message = {}
        while True:
            tok = self.peek()
            if tok is None or tok[1] == close:
                if close:
                    self.take()
                return msg
            kind, name = self.take()
            if kind not in ("ident", "ext"):
                raise ValueError(f"expected a field name, got {name!r}")
            colon = self.peek() == ("punct", ":")
            if colon:
                self.take()
            values = [self.value()]
            if self.peek() and self.peek()[1] in (",", ";"):  # type: ignore[index]
                self.take()
            msg.setdefault(name, []).extend(values)

    def value(self) -> Any:
        kind, text = self.take()
        if text in ("{", "<"):
            return self.message("}" if text == "{" else ">")
        if kind == "string":
            raw = _unquote(text)
            while self.peek() and self.peek()[0] == "string":  # type: ignore[index]
                raw += _unquote(self.take()[1])
            return raw
        if kind == "number":
            return _number(text)
        if kind == "ident":
            lowered = text.lower().lstrip("-")
            if lowered in ("inf", "infinity", "nan"):
                return _number(text)
            return text  # an enum name or true/false
        raise ValueError(f"unexpected token {text!r}")


def _number(text: str) -> int | float:
    t = text.lower()
    if t.lstrip("-") in ("inf", "infinity"):
        return float("-inf") if t.startswith("-") else float("inf")
    if t.lstrip("-") == "nan":
        return float("nan")
    t = t.rstrip("fu")
    if re.fullmatch(r"-?\d+", t):
        return int(t)
    return float(t)


def parse_text_proto(text: str) -> Message:
    return _Reader(text).message(None)


# --- translation ----------------------------------------------------------------


def _one(msg: Message, field: str, default: Any = None) -> Any:
    values = msg.get(field)
    return values[-1] if values else default


def _double(x: float) -> float | str:
    if math.isnan(x):
        return "nan"
    if x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    return x


def convert_value(v: Message) -> dict[str, Any]:
    """A cel.expr.Value message as a tagged JSON value."""
    (field,) = v.keys()
    x = v[field][-1]
    if field == "null_value":
        return {"null": None}
    if field == "bool_value":
        return {"bool": x == "true" or x is True}
    if field == "int64_value":
        return {"int": int(x)}
    if field == "uint64_value":
        return {"uint": int(x)}
    if field == "double_value":
        return {"double": _double(float(x))}
    if field == "string_value":
        return {"string": x.decode()}
    if field == "bytes_value":
        return {"bytes": x.hex()}
    if field == "list_value":
        return {"list": [convert_value(e) for e in x.get("values", [])]}
    if field == "map_value":
        return {
            "map": [
                [convert_value(_one(e, "key")), convert_value(_one(e, "value"))]
                for e in x.get("entries", [])
            ]
        }
    if field == "type_value":
        return {"type": x.decode()}
    if field == "object_value":
        ((url, body),) = ((k, vs[-1]) for k, vs in x.items())
        url = url.strip("[]")
        if url.endswith("google.protobuf.Duration"):
            return {"duration": [_one(body, "seconds", 0), _one(body, "nanos", 0)]}
        if url.endswith("google.protobuf.Timestamp"):
            return {"timestamp": [_one(body, "seconds", 0), _one(body, "nanos", 0)]}
        return {"object": url}
    raise ValueError(f"unknown value field {field}")


_PRIMITIVES = {
    "BOOL": "bool",
    "INT64": "int",
    "UINT64": "uint",
    "DOUBLE": "double",
    "STRING": "string",
    "BYTES": "bytes",
}


def convert_type(t: Message) -> str:
    """A cel.expr.Type message in the `Env` type syntax."""
    (field,) = t.keys()
    x = t[field][-1]
    if field == "primitive":
        return _PRIMITIVES[x]
    if field == "list_type":
        return f"list({convert_type(_one(x, 'elem_type'))})"
    if field == "map_type":
        return f"map({convert_type(_one(x, 'key_type'))}, {convert_type(_one(x, 'value_type'))})"
    if field == "message_type":
        return f"message:{x.decode()}"
    if field == "dyn":
        return "dyn"
    if field == "null":
        return "null"
    if field == "well_known":
        return {"TIMESTAMP": "timestamp", "DURATION": "duration", "ANY": "dyn"}.get(x, "dyn")
    if field == "wrapper":
        return f"wrapper:{_PRIMITIVES[x]}"
    return f"unsupported:{field}"


def convert_test(section: str, test: Message) -> dict[str, Any]:
    case: dict[str, Any] = {
        "section": section,
        "name": _one(test, "name").decode(),
        "expr": _one(test, "expr").decode(),
    }
    if _one(test, "disable_check") == "true":
        case["disable_check"] = True
    container = _one(test, "container")
    if container:
        case["container"] = container.decode()
    decls = {}
    for decl in test.get("type_env", []):
        name = _one(decl, "name").decode()
        if "ident" in decl:
            decls[name] = convert_type(_one(_one(decl, "ident"), "type"))
        else:
            decls[name] = "function"
    if decls:
        case["type_env"] = decls
    bindings = {}
    for entry in test.get("bindings", []):
        expr_value = _one(entry, "value")
        bindings[_one(entry, "key").decode()] = convert_value(_one(expr_value, "value"))
    if bindings:
        case["bindings"] = bindings
    if "value" in test:
        case["value"] = convert_value(_one(test, "value"))
    elif "eval_error" in test:
        errors = _one(test, "eval_error").get("errors", [])
        case["eval_error"] = "; ".join(_one(e, "message", b"").decode() for e in errors)
    elif "unknown" in test:
        case["unknown"] = True
    else:
        case["value"] = {"bool": True}  # SimpleTest: no result means `true`
    return case


def main(argv: list[str]) -> int:
    spec = Path(argv[0]) if argv else DEFAULT_SPEC
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    source = (spec / "SOURCE").read_text()
    commit = re.search(r"commit ([0-9a-f]{40})", source)
    files: dict[str, list[dict[str, Any]]] = {}
    for name in FILES:
        parsed = parse_text_proto((spec / f"{name}.textproto").read_text())
        files[name] = [
            convert_test(_one(section, "name").decode(), test)
            for section in parsed.get("section", [])
            for test in section.get("test", [])
        ]
    document = {
        "source": "github.com/google/cel-spec tests/simple/testdata/*.textproto",
        "commit": commit.group(1) if commit else None,
        "license": "Apache-2.0 (Copyright the CEL authors); translated to JSON, "
        "otherwise unmodified",
        "generator": "tools/gen_cel_conformance.py",
        "files": files,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    print(f"{out}: {sum(len(v) for v in files.values())} cases")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
