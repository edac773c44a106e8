"""`state_dir:` in edge.yml: where the state store lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeward.config import EdgeConfig, load_config
from edgeward.errors import ConfigError

REST = (
    "listeners: [{name: public, address: '127.0.0.1:0'}]\n"
    "endpoints: [{hostname: a.example.com, upstream: 'http://127.0.0.1:9'}]\n"
)


def loaded(tmp_path: Path, line: str) -> EdgeConfig:
    config = tmp_path / "conf" / "edge.yml"
    config.parent.mkdir(exist_ok=True)
    config.write_text(line + REST)
    return load_config(config)


def load(tmp_path: Path, line: str) -> Path | None:
    return loaded(tmp_path, line).state_dir


def test_absent_means_the_default(tmp_path: Path) -> None:
    assert load(tmp_path, "") is None


def test_relative_to_the_config_file(tmp_path: Path) -> None:
    assert load(tmp_path, "state_dir: ../state\n") == tmp_path / "state"
    assert load(tmp_path, f"state_dir: {tmp_path / 'abs'}\n") == tmp_path / "abs"


def test_home_expands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert load(tmp_path, "state_dir: ~/edgeward\n") == tmp_path / "home" / "edgeward"


def test_not_created_by_loading(tmp_path: Path) -> None:
    assert not load(tmp_path, "state_dir: new\n").exists()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("state_dir: ''\n", "edge.yml:1:1: state_dir: must be a directory path, not empty"),
        ("state_dir: [a]\n", "edge.yml:1:1: state_dir: must be a string, not a list"),
        ("state_dir: edge.yml\n", "edge.yml:1:1: state_dir: not a directory: "),
    ],
)
def test_errors(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, line)
    assert message in str(caught.value)


def store_url(tmp_path: Path, line: str) -> str | None:
    return loaded(tmp_path, line).store_url


def test_store_url_names_a_database(tmp_path: Path) -> None:
    assert store_url(tmp_path, "") is None
    url = "postgresql://edgeward@db.example/edgeward"
    assert store_url(tmp_path, f"store_url: {url}\n") == url


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("store_url: mysql://x/y\n", "edge.yml:1:1: store_url: must be a postgresql://"),
        (
            "store_url: postgresql://u:hunter2@db/e\n",
            "edge.yml:1:1: store_url: no password in the config",
        ),
        ("store_url: 5\n", "edge.yml:1:1: store_url: must be a string"),
    ],
)
def test_store_url_errors(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        store_url(tmp_path, line)
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)
