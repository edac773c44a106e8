"""YAML and JSON documents that remember where every value came from.

pyyaml's composer gives nodes with marks; we build plain Python values from
them and keep a side table from each value's *path* (the keys and indexes
that lead to it) to its line and column, so any later check can say
``edge.yml:12:5: endpoints[1].upstream``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edgeward.errors import ConfigError, Location

PathKey = tuple[str | int, ...]

try:  # the C loader when libyaml is there; same nodes, faster
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader


def dotted(path: PathKey) -> str:
    """`("endpoints", 1, "upstream")` -> `"endpoints[1].upstream"`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed file: its data and the position of every value in it."""

    data: Any
    file: str
    marks: Mapping[PathKey, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: PathKey) -> Location:
        """The location of `path`, or of its nearest ancestor we know."""
        probe = path
        while probe not in self.marks and probe:
            probe = probe[:-1]
        line, column = self.marks.get(probe, (None, None))
        return Location(file=self.file, line=line, column=column, path=dotted(path) or None)

    def sub(self, path: PathKey) -> Document:
        """The document rooted at `path` (an inline traffic policy), with
        paths relative to it and locations still in this file."""
        n = len(path)
        marks = {p[n:]: m for p, m in self.marks.items() if p[:n] == path}
        data: Any = self.data
        for part in path:
            data = data[part]
        return Document(data=data, file=self.file, marks=marks)


def load_document(path: Path, *, what: str = "file") -> Document:
    """Read a `.json` file as JSON, anything else as YAML (JSON is YAML too)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", Location(file=str(path))) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what}: {exc}", Location(file=str(path))) from None
    return parse_document(text, str(path), json_only=path.suffix.lower() == ".json")


def parse_document(text: str, file: str, *, json_only: bool = False) -> Document:
    if json_only:
        try:
            json.loads(text, object_pairs_hook=_reject_duplicate_json_keys(file))
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"invalid JSON: {exc.msg}", Location(file, exc.lineno, exc.colno)
            ) from None
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        raise ConfigError(f"invalid YAML: {exc.problem or exc.context}", where) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", Location(file)) from None
    marks: dict[PathKey, tuple[int, int]] = {}
    data = None if node is None else _Builder(file, marks).build(node, ())
    return Document(data=data, file=file, marks=marks)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    """Plain values from a node tree, recording marks by path on the way."""

    def __init__(self, file: str, marks: dict[PathKey, tuple[int, int]]) -> None:
        self.file = file
        self.marks = marks
        self.scalars = yaml.constructor.SafeConstructor()  # YAML's own scalar typing

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.marks.setdefault(path, _mark(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.scalars.construct_object(node)

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            where = Location(self.file, *_mark(key_node), path=dotted(path) or None)
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConfigError("YAML merge keys (<<) are not supported", where)
            key = (
                self.scalars.construct_object(key_node)
                if isinstance(key_node, yaml.ScalarNode)
                else None
            )
            if not isinstance(key, str):
                raise ConfigError("keys must be strings", where)
            child = (*path, key)
            if key in out:
                raise ConfigError(
                    "duplicate key", Location(self.file, *_mark(key_node), path=dotted(child))
                )
            self.marks[child] = _mark(key_node)
            out[key] = self.build(value_node, child)
        return out


def _reject_duplicate_json_keys(file: str) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ConfigError(f"duplicate key {key!r}", Location(file, path=key))
            out[key] = value
        return out

    return hook
