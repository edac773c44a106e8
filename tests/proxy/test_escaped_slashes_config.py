"""The endpoint key `escaped_slashes` (docs/proxy.md, "Request paths")."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeward.config import load_config
from edgeward.errors import ConfigError

CONFIG = """\
listeners:
  - name: web
    address: 127.0.0.1:8080
endpoints:
  - name: app
    hostname: app.example.com
    upstream: http://127.0.0.1:9000
{rule}"""


def load(tmp_path: Path, rule: str) -> object:
    path = tmp_path / "edge.yml"
    path.write_text(CONFIG.format(rule=rule))
    return load_config(path)


def test_the_default_rejects(tmp_path: Path) -> None:
    (endpoint,) = load(tmp_path, "").endpoints  # type: ignore[attr-defined]
    assert endpoint.escaped_slashes == "reject"


@pytest.mark.parametrize("rule", ["reject", "keep", "unescape"])
def test_each_rule_loads(tmp_path: Path, rule: str) -> None:
    (endpoint,) = load(tmp_path, f"    escaped_slashes: {rule}\n").endpoints  # type: ignore[attr-defined]
    assert endpoint.escaped_slashes == rule


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("decode", "must be 'reject', 'keep', 'unescape', not 'decode'"),
        ("true", "must be a string, not a boolean"),
    ],
)
def test_a_wrong_rule_is_a_load_error_at_its_line(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, f"    escaped_slashes: {value}\n")
    text = str(info.value)
    assert "edge.yml:8:" in text and "endpoints[0].escaped_slashes" in text, text
    assert message in text
