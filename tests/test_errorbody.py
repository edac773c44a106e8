"""The one body format of the edge's own error answers (`edgeward.errorbody`)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeward.errorbody import prefers_json, render
from edgeward.proxy import errors


@pytest.mark.parametrize(
    ("accept", "json_wanted"),
    [
        (None, False),
        (b"", False),
        (b"*/*", False),
        (b"application/json", True),
        (b"Application/JSON", True),
        (b"application/*", True),
        (b"application/json;q=0", False),
        (b"application/json, text/plain, */*", True),
        (b"text/plain, application/json", False),
        (b"text/plain;q=0.5, application/json", True),
        (b"application/json;q=0.5, text/*", False),
        (b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
        (b"application/json;q=banana", False),
        (b"application/json;q=2", False),
        (b"*/*;q=0.1, application/json;q=0.2", True),
    ],
)
def test_prefers_json(accept: bytes | None, json_wanted: bool) -> None:
    assert prefers_json(accept) is json_wanted


@given(st.binary(max_size=80))
def test_any_accept_value_is_an_answer_not_an_error(accept: bytes) -> None:
    assert prefers_json(accept) in (True, False)


def test_text_and_json_carry_the_same_facts() -> None:
    content_type, body = render(502, "ERR_EDGEWARD_3006", "refused", "rid1")
    assert content_type == b"text/plain; charset=utf-8"
    assert body == b"502 refused\nerror: ERR_EDGEWARD_3006\nrequest_id: rid1\n"
    content_type, body = render(502, "ERR_EDGEWARD_3006", "refused", "rid1", b"application/json")
    assert content_type == b"application/json"
    assert json.loads(body) == {
        "error": {
            "status": 502,
            "code": "ERR_EDGEWARD_3006",
            "message": "refused",
            "request_id": "rid1",
        }
    }


@pytest.mark.parametrize("error", errors.ALL, ids=lambda e: e.code)
def test_every_edge_error_uses_it(error: errors.EdgeError) -> None:
    answer = error.response("r", b"application/json")
    assert answer.status == error.status and answer.error_code == error.code
    assert answer.headers == [(b"content-type", b"application/json")]
    assert json.loads(answer.body)["error"]["code"] == error.code
    assert error.response("r").body.startswith(f"{error.status} {error.message}\n".encode())


def test_policy_failed_is_one_of_them() -> None:
    answer = errors.POLICY_FAILED.response("r", b"application/json")
    assert json.loads(answer.body)["error"]["code"] == "ERR_EDGEWARD_3500"
