"""The admin API's pure parts and its store functions, without a server:
ACL grants, API keys in a real store, the `api:` config section, pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeward.admin import keys, resources
from edgeward.admin.errors import ApiError
from edgeward.authtokens import Acl, manage
from edgeward.config import load_config
from edgeward.errors import ConfigError
from edgeward.store import Store


@pytest.mark.parametrize(
    ("grant", "asked", "beyond"),
    [
        (["bind:*.alice.internal"], ["bind:app.alice.internal"], []),
        (["bind:*.alice.internal"], ["bind:*.alice.internal"], []),
        (["bind:*.alice.internal"], ["bind:*.x.alice.internal"], []),
        (["bind:*.alice.internal"], ["bind:alice.internal"], ["bind:alice.internal"]),
        (["bind:*.alice.internal"], ["bind:*.internal"], ["bind:*.internal"]),
        (["bind:*.alice.internal"], ["*"], ["*"]),
        (["bind:*.alice.internal"], [], ["*"]),  # no rules: unrestricted
        (["bind:a.example.com"], ["bind:*.a.example.com"], ["bind:*.a.example.com"]),
        (["bind:tcp.example.com:20001"], ["bind:tcp.example.com:20001"], []),
        (
            ["bind:tcp.example.com:20001"],
            ["bind:tcp.example.com:20002"],
            ["bind:tcp.example.com:20002"],
        ),
        (["bind:team=alice"], ["bind:team=alice"], []),
        (["bind:team=alice"], ["bind:team=*"], ["bind:team=*"]),
        (["bind:app=*"], ["bind:app=web"], []),
        (["*"], ["bind:anything.example.com", "*"], []),
        ([], [], []),  # an unrestricted grant covers everything
    ],
)
def test_an_acl_within_a_grant(grant: list[str], asked: list[str], beyond: list[str]) -> None:
    found = Acl.parse(asked).beyond(Acl.parse(grant))
    assert [rule.text for rule in found] == beyond


def test_api_keys_in_the_store(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        created = keys.create(store, role="developer", acl=Acl.parse(["bind:*.a.internal"]))
        assert created.key.text.startswith("ewk_") and created.row.id == created.key.id
        assert created.key.text not in repr(created.row)
        assert keys.authenticate(store, created.key.text) == created.row
        wrong = created.key.text[:-2] + ("AA" if not created.key.text.endswith("AA") else "BB")
        assert keys.authenticate(store, wrong) is None
        # an authtoken's hash never verifies as an API key's, nor the other way
        token = manage.create(store, acl=Acl.parse(["*"]))
        assert keys.authenticate(store, token.token.text) is None
        with pytest.raises(manage.InputError):
            keys.create(store, role="root")
        with pytest.raises(manage.InputError):
            keys.create(store, role="auditor", acl=Acl.parse(["*"]))
        keys.delete(store, created.row.id)
        assert keys.authenticate(store, created.key.text) is None
        with pytest.raises(keys.UnknownApiKey):
            keys.delete(store, created.row.id)


def test_update_checks_inside_the_transaction(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        row = manage.create(store, acl=Acl.parse(["bind:a.internal"]), description="one").row
        before = store.revision()

        def refuse(current: object) -> None:
            raise ApiError(412, "X", "no")

        with pytest.raises(ApiError):
            manage.update(store, row.id, description="two", check=refuse)
        assert manage.get(store, row.id).description == "one"
        assert store.revision() == before  # rolled back: the edge sees no change
        changed = manage.update(store, row.id, acl=Acl.parse(["bind:b.internal"]))
        assert changed.acl == ("bind:b.internal",) and store.revision() == before + 1


def _config(tmp_path: Path, api: str) -> Path:
    path = tmp_path / "edge.yml"
    path.write_text(
        "listeners: [{name: web, address: 127.0.0.1:8080}]\n"
        "admin: {address: 127.0.0.1:9090}\n" + api
    )
    return path


def test_the_api_section(tmp_path: Path) -> None:
    config = load_config(
        _config(
            tmp_path,
            f"api: {{address: 127.0.0.1:9443, audit_log: [stdout, {tmp_path}/audit.log]}}\n",
        )
    )
    assert config.api is not None
    assert (config.api.host, config.api.port, config.api.tls) == ("127.0.0.1", 9443, None)
    assert config.api.audit_log == ("stdout", str(tmp_path / "audit.log"))
    for text, message in (
        ("api: {address: 127.0.0.1:9090}\n", "shares the address of the admin listener"),
        ("api: {address: 127.0.0.1:8080}\n", "shares the address of listener 'web'"),
        ("api: {address: 127.0.0.1:9443, listen: x}\n", "listen"),
        ("api: {address: 127.0.0.1:9443, audit_log: 3}\n", "audit_log"),
        ("api: {address: 127.0.0.1:9443, audit_log: /nonexistent/dir/a.log}\n", "not found"),
    ):
        with pytest.raises(ConfigError, match=message):
            load_config(_config(tmp_path, text))


def test_pages() -> None:
    items = [{"id": f"x{i}"} for i in range(5)]
    first = resources.page("http://h", "things", items, {"limit": "2"})
    assert [i["id"] for i in first["things"]] == ["x0", "x1"]
    assert first["next_page_uri"] == "http://h/things?before_id=x1&limit=2"
    last = resources.page("http://h", "things", items, {"limit": "2", "before_id": "x3"})
    assert [i["id"] for i in last["things"]] == ["x4"] and last["next_page_uri"] is None
    exact = resources.page("http://h", "things", items, {"limit": "5"})
    assert exact["next_page_uri"] is None
    for query in ({"limit": "101"}, {"limit": "x"}, {"before_id": "nope"}):
        with pytest.raises(ApiError):
            resources.page("http://h", "things", items, query)
