"""`edgeward.document`: the one YAML/JSON loader of edge configs and
policies (YAML 1.2 core typing, a position for every value)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edgeward import document
from edgeward.config import load_config
from edgeward.document import load_document, parse_document
from edgeward.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def error(text: str, **kw: bool) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_document(text, "f.yml", **kw)
    return info.value


def test_yaml_1_2_core_typing() -> None:
    doc = parse_document(
        "a: [on, off, yes, no, y, true, False, null, ~, '', 0x1f, 0o17, 010, 1_000, "
        "1.5, .inf, -.INF, 2024-05-01, 1:30]\n",
        "f.yml",
    )
    (values,) = doc.data.values()
    assert values[:10] == ["on", "off", "yes", "no", "y", True, False, None, None, ""]
    assert values[10:14] == [31, 15, 10, "1_000"]  # YAML 1.1 would read 1_000 as 1000
    assert values[14:17] == [1.5, float("inf"), float("-inf")]
    assert values[17:] == ["2024-05-01", "1:30"]  # no timestamps, no base 60


def test_keys_are_text_and_unique() -> None:
    assert parse_document("404: a\ntrue: b\n", "f.yml").data == {"404": "a", "true": "b"}
    err = error("a: 1\nb: 2\na: 3\n")
    assert err.location is not None and (err.location.line, err.location.path) == (3, "a")
    assert "duplicate key 'a'" in err.message


def test_merge_keys_and_tags_are_refused() -> None:
    assert "merge keys" in error("x: &x {a: 1}\ny:\n  <<: *x\n").message
    err = error("expressions:\n  - !req.url.path.startsWith('/a')\n")
    assert err.location is not None and err.location.line == 2
    assert "quote" in err.message  # the unquoted CEL negation


def test_syntax_errors_are_located() -> None:
    err = error("a: [1, 2\n")
    assert err.location is not None and err.location.line == 2
    err = error('{"a": 1,\n "b": }\n', json_only=True)
    assert err.location is not None and (err.location.line, err.location.column) == (2, 7)
    assert parse_document('{\t"a": [1,\t2]}', "f.json", json_only=True).data == {"a": [1, 2]}


def test_positions_and_sub_documents() -> None:
    doc = parse_document("top:\n  policy:\n    rules:\n      - name: x\n", "edge.yml")
    assert doc.locate(("top", "policy", "rules", 0, "name")).line == 4
    sub = doc.sub(("top", "policy"))
    assert sub.data == {"rules": [{"name": "x"}]}
    where = sub.locate(("rules", 0, "name"))
    assert (where.file, where.line, where.path) == ("edge.yml", 4, "rules[0].name")


def test_load_document_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="policy file not found"):
        load_document(tmp_path / "nope.yml", what="policy file")


def _parsers_agree(paths: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    assert paths
    fast = [load_document(p) for p in paths]
    monkeypatch.setattr(document, "_Loader", document._PyLoader)
    slow = [load_document(p) for p in paths]
    assert [(d.data, dict(d.marks)) for d in fast] == [(d.data, dict(d.marks)) for d in slow]


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML without libyaml")
def test_libyaml_and_pure_python_parsers_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    _parsers_agree(sorted(ROOT.glob("examples/**/*.yml")), monkeypatch)


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML without libyaml")
def test_parsers_agree_on_the_public_example_policies(
    monkeypatch: pytest.MonkeyPatch, conformance: Path
) -> None:
    _parsers_agree(sorted((conformance / "policies").glob("*.yaml"))[:150], monkeypatch)


def test_inline_policies_are_typed_like_policy_files(tmp_path: Path) -> None:
    """`on` in an inline policy stays text, as in a policy file."""
    path = tmp_path / "edge.yml"
    path.write_text(
        "listeners:\n"
        "  - name: web\n"
        "    address: 127.0.0.1:0\n"
        "endpoints:\n"
        "  - hostname: app.example.com\n"
        "    upstream: http://127.0.0.1:1\n"
        "    traffic_policy:\n"
        "      on_http_request:\n"
        "        - actions: [{type: add-headers, config: {headers: {x-mode: on}}}]\n"
    )
    (endpoint,) = load_config(path).endpoints
    assert endpoint.policy_source is not None
    source = endpoint.policy_source.document
    rule = source.data["on_http_request"][0]
    assert rule["actions"][0]["config"]["headers"] == {"x-mode": "on"}
    assert source.locate(("on_http_request", 0, "actions")).line == 9
