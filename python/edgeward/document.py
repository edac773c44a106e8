"""YAML and JSON documents that remember where every value came from: the
edge config (`edgeward.config`) and Traffic Policy files (`edgeward.policy`)
are read by this one loader.

PyYAML's composer gives nodes with marks; we build plain values from them
and keep, for each value's path (the keys and indexes that lead to it), its
line and column, so every later error can say
``edge.yml:12:5: endpoints[1].upstream`` or
``policy.yml:8:9: on_http_request[1].actions[0].config.allow``.

Scalars are typed as YAML 1.2's core schema (and Go's YAML library, which
the public Traffic Policy agent reads policies with): only `true`/`false`
are booleans and `on`, `yes`, `no` stay text, no sexagesimal numbers, no
timestamps. A policy inline in the edge config is typed like a policy file.
An unknown tag is an error, because `!expr` is the classic mistake of an
unquoted CEL negation. Duplicate keys and merge keys (`<<`) are errors.

`Fields` is the one reader of a mapping of such a document, with the
type names (`describe`) and the located errors (`ConfigError`) of both: the
edge config's sections and a policy action's `config` read through it.

Sans-IO apart from `load_document` reading the file.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import yaml

from edgeward.errors import ConfigError, Location

PathKey = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_MAX_NODES = 100_000  # aliases can multiply a small file; refuse absurd ones


class _Resolver(yaml.resolver.BaseResolver):
    """YAML 1.2 core schema resolution of plain scalars."""

    # PyYAML keeps resolvers in this class attribute; a fresh one leaves
    # out the YAML 1.1 defaults.
    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}  # noqa: RUF012


for _tag, _pattern, _first in (
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (_NULL, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (_INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        _FLOAT,
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
    (_MERGE, r"^(?:<<)$", "<"),  # only to say that merge keys are not supported
):
    _Resolver.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


class _PyLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    _Resolver,
):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _Resolver.__init__(self)


_Loader: type[Any] = _PyLoader
if yaml.__with_libyaml__:  # libyaml's parser and composer: the same nodes, faster

    class _CLoader(yaml._yaml.CParser, _Resolver):
        def __init__(self, stream: str) -> None:
            yaml._yaml.CParser.__init__(self, stream)
            _Resolver.__init__(self)

    _Loader = _CLoader


def dotted(path: PathKey) -> str:
    """`("endpoints", 1, "upstream")` -> `"endpoints[1].upstream"`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`"; did you mean 'x'?"` for the closest of `choices` to a word that
    is not one of them, else `""`: the tail of an "unknown key" message."""
    match = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def misspelling_of(word: str, candidates: Iterable[str]) -> str | None:
    """The one of `candidates` that looks like `word` mistyped (close, and
    about as long: `upstrem` for `upstream`, not `upstream_tls`), or None.
    For a required key that is missing: a near miss among the keys present
    is reported as the unknown key it is, at its own line."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=3, cutoff=0.75)
    near = [c for c in close if abs(len(c) - len(word)) <= 2]
    return near[0] if near else None


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed file: its data and the position of every value in it."""

    data: Any
    file: str
    marks: Mapping[PathKey, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: PathKey) -> Location:
        """Where `path` is, or its nearest ancestor with a known position."""
        probe = path
        while probe not in self.marks and probe:
            probe = probe[:-1]
        line, column = self.marks.get(probe, (None, None))
        return Location(file=self.file, line=line, column=column, path=dotted(path) or None)

    def sub(self, path: PathKey) -> Document:
        """The document rooted at `path` (a policy inline in the edge
        config), with paths relative to it and locations still in this file."""
        n = len(path)
        marks = {p[n:]: m for p, m in self.marks.items() if p[:n] == path}
        data: Any = self.data
        for part in path:
            data = data[part]
        return Document(data=data, file=self.file, marks=marks)


class SourceDocument(Protocol):
    """A parsed document that can say where each value came from (a
    `Document`, or one that stands in for it)."""

    @property
    def data(self) -> Any: ...

    def locate(self, path: PathKey) -> Location: ...


_KINDS: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a mapping",
}


def describe(value: object) -> str:
    """What a value of a document is, for an error message: "a string",
    "a list", "empty"..."""
    if value is None:
        return "empty"
    kind = _KINDS.get(type(value))
    if kind is not None:
        return kind
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def kind_name(kind: type) -> str:
    """What a value of type `kind` is called in an error message."""
    return _KINDS.get(kind, kind.__name__)


class Fields:
    """Typed, located reading of one mapping of a document: the reader the
    edge config's sections (`edgeward.config.load`) and a policy action's
    `config` (`edgeward.policy.config.ConfigReader`) are built on.

    Every read names its key (`read`), so an error points at the key's
    line; the keys no read asked for are unknown (with the closest valid
    one as a hint); a required key that is absent is first looked for as a
    misspelling among the unknown ones. Subclasses add the typed reads of
    their documents and say what a key is called there (`word`)."""

    word: ClassVar[str] = "key"  # "field" in a policy action's config
    list_known: ClassVar[bool] = False  # an unknown key's error lists the valid ones
    Error: ClassVar[type[ConfigError]] = ConfigError

    def __init__(self, data: Any, path: PathKey, document: SourceDocument) -> None:
        if not isinstance(data, Mapping):
            raise self.Error(f"must be a mapping, not {describe(data)}", document.locate(path))
        self.data: Mapping[str, Any] = data
        self.path = path
        self.document = document
        self.read: set[str] = set()  # asked for, present or not
        self.known: set[str] = set()  # asked about (`has`): valid here, maybe absent

    def where(self, key: str | int | None = None) -> Location:
        return self.document.locate(self.path if key is None else (*self.path, key))

    def error(self, key: str | int | None, message: str) -> ConfigError:
        """The error at `key`, or at the mapping itself for None."""
        return self.Error(message, self.where(key))

    def unread(self) -> list[str]:
        """The keys present that no read asked for, in document order."""
        valid = self.read | self.known
        return [k for k in self.data if k not in valid]

    def misspelt(self, key: str) -> ConfigError | None:
        """The error for an unread key present that is `key` mistyped, or
        None: where `key` is required and absent, that key is the mistake."""
        typo = misspelling_of(key, self.unread())
        if typo is None:
            return None
        return self.error(typo, f"unknown {self.word} {typo!r}; did you mean {key!r}?")

    def first_misspelt(self) -> ConfigError | None:
        """`misspelt` for any key read that is absent: the error for the
        first unread key present that is one of them mistyped, or None."""
        absent = [k for k in self.read if k not in self.data]
        for name in self.unread():
            meant = misspelling_of(name, absent)
            if meant is not None:
                return self.error(name, f"unknown {self.word} {name!r}; did you mean {meant!r}?")
        return None

    def check_unknown(self) -> None:
        """Raise for the first key present that no read asked for."""
        unread = self.unread()
        if not unread:
            return
        name = unread[0]
        valid = self.read | self.known
        message = f"unknown {self.word} {name!r}{did_you_mean(name, valid)}"
        if self.list_known:
            message += f" ({self.word}s: {', '.join(sorted(valid)) or 'none'})"
        raise self.error(name, message)


def load_document(path: Path, *, what: str = "file") -> Document:
    """Read `path`: `.json` as JSON, anything else as YAML (JSON is YAML too)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", Location(file=str(path))) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what}: {exc}", Location(file=str(path))) from None
    return parse_document(text, str(path), json_only=path.suffix.lower() == ".json")


def parse_document(text: str, file: str = "<input>", *, json_only: bool = False) -> Document:
    """Raises `ConfigError` naming the line and column of a syntax error."""
    if json_only:
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"invalid JSON: {exc.msg}", Location(file, exc.lineno, exc.colno)
            ) from None
        # Valid JSON has no raw tab inside a string, so every tab is white
        # space, which YAML does not always accept.
        text = text.replace("\t", " ")
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        raise ConfigError(f"invalid YAML: {exc.problem or exc.context}", where) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", Location(file)) from None
    finally:
        loader.dispose()
    marks: dict[PathKey, tuple[int, int]] = {}
    data = None if node is None else _Builder(file, marks).build(node, ())
    return Document(data=data, file=file, marks=marks)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    """Plain values from the node tree, recording positions by path."""

    def __init__(self, file: str, marks: dict[PathKey, tuple[int, int]]) -> None:
        self.file = file
        self.marks = marks
        self.nodes = 0

    def where(self, node: yaml.Node, path: PathKey) -> Location:
        return Location(self.file, *_mark(node), path=dotted(path) or None)

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise ConfigError(f"document has more than {_MAX_NODES} values", self.where(node, path))
        self.marks.setdefault(path, _mark(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: PathKey) -> Any:
        value: str = node.value
        tag = node.tag
        if tag == _STR:
            return value
        if tag == _BOOL:
            return value.lower() == "true"
        if tag == _NULL:
            return None
        if tag == _INT:
            return (
                int(value, 8)
                if value.startswith("0o")
                else int(value, 0 if value.startswith("0x") else 10)
            )
        if tag == _FLOAT:
            return float(value.lower().replace(".inf", "inf").replace(".nan", "nan"))
        hint = ""
        if tag.startswith("!"):
            text = f"{tag} {value}".strip()
            hint = f" (quote {text!r}: YAML reads a leading '!' as a tag)"
        raise ConfigError(f"unsupported YAML tag {tag!r}{hint}", self.where(node, path))

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            where = self.where(key_node, path)
            if key_node.tag == _MERGE:
                raise ConfigError("YAML merge keys (<<) are not supported", where)
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError("keys must be text", where)
            key = self._scalar(key_node, path)
            if not isinstance(key, str):
                key = key_node.value  # `404:` or `true:` as a key is its text
            child = (*path, key)
            if key in out:
                raise ConfigError(f"duplicate key {key!r}", self.where(key_node, child))
            self.marks[child] = _mark(key_node)
            out[key] = self.build(value_node, child)
        return out
