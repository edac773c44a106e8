"""The RPC messages as the SDKs send and accept them (agent-protocol.md §3),
the Proxy header, heartbeat durations, and the incremental JSON reader."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeward.tunnel.errors import MessageError, RpcError
from edgeward.tunnel.messages import (
    Auth,
    AuthResp,
    AuthRespExtra,
    Bind,
    BindResp,
    HttpOpts,
    ProxyHeader,
    ProxyHeaderReader,
    StopTunnel,
    StreamType,
    TcpOpts,
    TlsOpts,
    Unbind,
    decode_command_resp,
    ns_to_seconds,
    seconds_to_ns,
)
from edgeward.tunnel.rpc import JsonObjectReader

# What ngrok-python 1.7.0 sent, as the fact sheet records it.
SDK_AUTH = {
    "Version": ["3", "2"],
    "ClientId": "",
    "Extra": {
        "OS": "linux",
        "Arch": "x86_64",
        "AuthToken": "tok",
        "Version": "1.7.0",
        "Hostname": "",
        "UserAgent": "ngrok-python/1.7.0 ngrok-rust/0.18.0",
        "Metadata": "meta",
        "Cookie": "",
        "HeartbeatInterval": 10000000000,
        "HeartbeatTolerance": 15000000000,
        "UpdateUnsupportedError": "the agent has not defined a callback for this operation",
        "StopUnsupportedError": "x",
        "RestartUnsupportedError": "",
        "ProxyType": "",
        "MutualTLS": False,
        "ServiceRun": False,
        "ConfigVersion": "",
        "CustomInterface": False,
        "CustomCAs": False,
        "ClientType": "ngrok-python",
    },
}
SDK_HTTP_OPTS = {
    "Domain": "app.example.test",
    "Hostname": "",
    "Auth": "",
    "Subdomain": "",
    "HostHeaderRewrite": False,
    "LocalUrlScheme": None,
    "ProxyProto": 0,
    "Compression": None,
    "CircuitBreaker": None,
    "IPRestriction": None,
    "BasicAuth": None,
    "OAuth": None,
    "OIDC": None,
    "WebhookVerification": None,
    "MutualTLSCA": None,
    "RequestHeaders": None,
    "ResponseHeaders": None,
    "WebsocketTCPConverter": None,
    "UserAgentFilter": None,
    "TrafficPolicy": None,
}
SDK_BIND = {
    "Id": "",
    "Proto": "https",
    "ForwardsTo": "http://127.0.0.1:29510/",
    "ForwardsProto": "",
    "Opts": SDK_HTTP_OPTS,
    "Extra": {
        "Token": "",
        "IPPolicyRef": "",
        "Metadata": "listener",
        "Bindings": [],
        "PoolingEnabled": False,
    },
}


def body(value: object) -> bytes:
    return json.dumps(value).encode()


# --- Auth ---------------------------------------------------------------------------------


def test_auth_as_the_sdk_sends_it() -> None:
    auth = Auth.decode(body(SDK_AUTH))
    assert auth.version == ["3", "2"]
    assert auth.client_id == ""
    extra = auth.extra
    assert extra.authtoken == "tok"
    assert extra.client_type == "ngrok-python"
    assert extra.user_agent == "ngrok-python/1.7.0 ngrok-rust/0.18.0"
    assert extra.heartbeat_interval == 10_000_000_000  # nanoseconds
    assert ns_to_seconds(extra.heartbeat_tolerance) == 15.0
    assert extra.update_unsupported_error.startswith("the agent")  # type: ignore[union-attr]
    assert extra.restart_unsupported_error == ""  # "" means supported
    assert "tok" not in repr(auth)  # the token is a secret


def test_auth_keys_match_case_insensitively() -> None:
    # the Go SDK spells the token "Authtoken"; Go decodes JSON keys case-insensitively
    auth = Auth.decode(b'{"version":["2"],"CLIENTID":"c1","extra":{"Authtoken":"go-token"}}')
    assert (auth.version, auth.client_id, auth.extra.authtoken) == (["2"], "c1", "go-token")


def test_auth_round_trip_uses_the_rust_sdk_names() -> None:
    auth = Auth.decode(body(SDK_AUTH))
    encoded = json.loads(auth.encode())
    assert encoded == SDK_AUTH


@pytest.mark.parametrize(
    ("raw", "where", "reason"),
    [
        (b"[]", "Auth", "expected an object, got a list"),
        (b'{"Version":"3"}', "Auth.Version", "expected a list of strings, got a string"),
        (b'{"Extra":{"HeartbeatInterval":"10s"}}', "Auth.Extra.HeartbeatInterval", "an integer"),
        (b'{"Extra":{"MutualTLS":1}}', "Auth.Extra.MutualTLS", "expected true or false"),
        (b'{"Extra":[]}', "Auth.Extra", "expected an object"),
        (b"{", "Auth", "not JSON"),
    ],
)
def test_auth_errors_name_the_field(raw: bytes, where: str, reason: str) -> None:
    with pytest.raises(MessageError) as caught:
        Auth.decode(raw)
    assert caught.value.where == where
    assert reason in caught.value.reason


def test_auth_resp_carries_what_the_sdk_requires() -> None:
    resp = AuthResp("3", "sess-1", AuthRespExtra(region="local", cookie="c"))
    encoded = json.loads(resp.encode())
    assert encoded == {
        "Version": "3",
        "ClientId": "sess-1",
        "Extra": {"Region": "local", "Cookie": "c"},
    }
    assert AuthResp.decode(resp.encode()) == resp


@pytest.mark.parametrize("raw", [b"{}", b'{"ClientId":"x"}', b'{"Version":"3"}'])
def test_auth_resp_without_version_or_client_id_is_refused(raw: bytes) -> None:
    # the SDK: "failed to deserialize rpc response"
    with pytest.raises(MessageError):
        AuthResp.decode(raw)


def test_an_error_answer_wins_and_splits_its_ngrok_code() -> None:
    raw = b'{"Error":"authentication failed: bad token\\nERR_NGROK_107","Version":"3"}'
    with pytest.raises(RpcError) as caught:
        AuthResp.decode(raw)
    assert caught.value.message == "authentication failed: bad token"
    assert caught.value.error_code == "ERR_NGROK_107"
    assert caught.value.to_text() == "authentication failed: bad token\nERR_NGROK_107"
    # an empty Error does not count
    assert AuthResp.decode(b'{"Error":"","Version":"3","ClientId":"s"}').client_id == "s"


# --- Bind -----------------------------------------------------------------------------------


def test_bind_from_sdk_1_7_0_names_its_domain_in_domain() -> None:
    bind = Bind.decode(body(SDK_BIND))
    assert bind.proto == "https"
    assert bind.forwards_to == "http://127.0.0.1:29510/"
    assert isinstance(bind.opts, HttpOpts)
    assert bind.opts.requested_domain == "app.example.test"
    assert bind.extra.metadata == "listener"
    assert bind.extra.bindings == []


def test_bind_from_sdk_1_4_0_names_its_domain_in_hostname() -> None:
    opts = {k: v for k, v in SDK_HTTP_OPTS.items() if k != "Domain"}
    opts["Hostname"] = "old.example.test"
    extra = {k: v for k, v in SDK_BIND["Extra"].items() if k != "PoolingEnabled"}  # type: ignore[attr-defined]
    bind = Bind.decode(body({**SDK_BIND, "Opts": opts, "Extra": extra}))
    assert isinstance(bind.opts, HttpOpts)
    assert bind.opts.requested_domain == "old.example.test"
    assert bind.extra.pooling_enabled is False


def test_bind_resp_echoes_the_options_with_every_key_the_sdk_requires() -> None:
    bind = Bind.decode(body(SDK_BIND))
    resp = BindResp("ep-1", "https://app.example.test", "https", bind.opts, token="t-1")
    encoded = json.loads(resp.encode())
    assert encoded["Id"] == "ep-1"
    assert encoded["URL"] == "https://app.example.test"
    assert encoded["Extra"] == {"Token": "t-1"}
    # the Rust SDK deserializes these without defaults; the legacy keys ride along
    assert encoded["Opts"] == SDK_HTTP_OPTS
    decoded = BindResp.decode(resp.encode())
    assert decoded == resp
    assert "t-1" not in repr(decoded)


def test_bind_options_of_tcp_and_tls() -> None:
    tcp = Bind.decode(b'{"Proto":"tcp","Opts":{"Addr":"1.tcp.example.test:20002","ProxyProto":2}}')
    assert tcp.opts == TcpOpts(addr="1.tcp.example.test:20002", proxy_proto=2)
    assert json.loads(BindResp("ep-2", "tcp://x:1", "tcp", tcp.opts).encode())["Opts"] == {
        "Addr": "1.tcp.example.test:20002",
        "ProxyProto": 2,
        "TrafficPolicy": None,
    }
    tls = Bind.decode(
        b'{"Proto":"tls","Opts":{"Hostname":"t.example.test","MutualTLSAtAgent":true,'
        b'"TLSTermination":null}}'
    )
    assert isinstance(tls.opts, TlsOpts)
    assert tls.opts.requested_domain == "t.example.test"
    assert tls.opts.mutual_tls_at_agent
    assert tls.opts.others == {"TLSTermination": None}


def test_traffic_policy_as_text_or_legacy_object() -> None:
    text = Bind.decode(b'{"Proto":"http","Opts":{"TrafficPolicy":"on_http_request: []"}}')
    assert text.opts.traffic_policy == "on_http_request: []"
    legacy = Bind.decode(b'{"Proto":"http","Opts":{"TrafficPolicy":{"Inbound":[]}}}')
    assert json.loads(legacy.opts.traffic_policy or "") == {"Inbound": []}


def test_go_spellings_of_option_keys_are_read_and_not_duplicated() -> None:
    bind = Bind.decode(
        b'{"Proto":"http","Opts":{"URL":"https://a.internal","LocalURLScheme":"http",'
        b'"HostHeaderRewrite":true}}'
    )
    assert isinstance(bind.opts, HttpOpts)
    assert bind.opts.url == "https://a.internal"
    assert bind.opts.local_url_scheme == "http"
    assert bind.opts.others == {}
    assert "LocalURLScheme" not in json.loads(bind.encode())["Opts"]


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b'{"Proto":"ssh","Opts":{}}', "Bind.Proto"),
        (b'{"Proto":"http","Opts":{"ProxyProto":3}}', "Bind.Opts.ProxyProto"),
        (b'{"Proto":"http","Opts":{"TrafficPolicy":[1]}}', "Bind.Opts.TrafficPolicy"),
        (b'{"Proto":"http","Extra":{"Bindings":"public"}}', "Bind.Extra.Bindings"),
    ],
)
def test_bind_errors_name_the_field(raw: bytes, where: str) -> None:
    with pytest.raises(MessageError) as caught:
        Bind.decode(raw)
    assert caught.value.where == where


@pytest.mark.parametrize("missing", ["Id", "URL", "Proto", "Opts", "Extra"])
def test_bind_resp_requires_what_the_sdk_requires(missing: str) -> None:
    good = json.loads(BindResp("ep-1", "https://a", "https", HttpOpts(), token="t").encode())
    del good[missing]
    with pytest.raises(MessageError):
        BindResp.decode(body(good))


def test_bind_round_trip() -> None:
    bind = Bind.decode(body(SDK_BIND))
    assert Bind.decode(bind.encode()) == bind


def test_unbind_stop_tunnel_and_command_answers() -> None:
    assert Unbind.decode(Unbind("ep-1").encode()) == Unbind("ep-1")
    stop = StopTunnel("ep-1", "revoked", "ERR_NGROK_3200")
    assert json.loads(stop.encode()) == {
        "Id": "ep-1",
        "Message": "revoked",
        "ErrorCode": "ERR_NGROK_3200",
    }
    assert StopTunnel.decode(stop.encode()) == stop
    assert decode_command_resp(b"{}") is None
    assert decode_command_resp(b'{"Error":"no"}') == "no"


def test_stream_type_values() -> None:
    assert [int(t) for t in StreamType] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xFFFFFFFF]


# --- the Proxy header ---------------------------------------------------------------------


def test_proxy_header_length_is_an_i64_little_endian() -> None:
    header = ProxyHeader("ep-1", "192.0.2.10:54321", "https", "3", False)
    wire = header.encode()
    (size,) = struct.unpack("<q", wire[:8])
    assert size == len(wire) - 8
    assert json.loads(wire[8:]) == {
        "Id": "ep-1",
        "ClientAddr": "192.0.2.10:54321",
        "Proto": "https",
        "EdgeType": "3",
        "PassthroughTLS": False,
    }


@given(st.text(), st.text(), st.text(), st.text(), st.booleans())
def test_proxy_header_encoding_is_the_json_of_its_fields(
    endpoint: str, addr: str, proto: str, edge_type: str, passthrough: bool
) -> None:
    """The hand-written encoder against `json`: any text, escapes included."""
    header = ProxyHeader(endpoint, addr, proto, edge_type, passthrough)
    wire = header.encode()
    assert json.loads(wire[8:]) == {
        "Id": endpoint,
        "ClientAddr": addr,
        "Proto": proto,
        "EdgeType": edge_type,
        "PassthroughTLS": passthrough,
    }
    assert ProxyHeader.decode_body(wire[8:]) == header


def test_proxy_header_keys_in_another_case_are_read_too() -> None:
    raw = (
        b'{"id":"ep-1","clientaddr":"1.2.3.4:5","PROTO":"tcp","edgetype":"1","passthroughtls":true}'
    )
    assert ProxyHeader.decode_body(raw) == ProxyHeader("ep-1", "1.2.3.4:5", "tcp", "1", True)


def test_proxy_header_reader_split_at_every_point() -> None:
    header = ProxyHeader("ep-1", "[2001:db8::1]:443", "tls", "2", True)
    wire = header.encode() + b"payload"
    for cut in range(len(wire) + 1):
        reader = ProxyHeaderReader()
        first = reader.feed(wire[:cut])
        if first is not None:  # complete: what follows is the caller's payload
            got, payload = first[0], first[1] + wire[cut:]
        else:
            second = reader.feed(wire[cut:])
            assert second is not None
            got, payload = second
        assert got == header
        assert payload == b"payload"


@pytest.mark.parametrize("size", [-1, 64 * 1024 + 1])
def test_proxy_header_length_out_of_range(size: int) -> None:
    with pytest.raises(MessageError):
        ProxyHeaderReader().feed(struct.pack("<q", size))


def test_proxy_header_fields_are_required() -> None:
    with pytest.raises(MessageError) as caught:
        ProxyHeader.decode_body(b'{"Id":"ep-1","ClientAddr":"1.2.3.4:5","Proto":"https"}')
    assert caught.value.where == "ProxyHeader.EdgeType"


def test_heartbeat_durations_are_nanoseconds() -> None:
    assert seconds_to_ns(10) == 10_000_000_000
    assert seconds_to_ns(0.25) == 250_000_000
    assert ns_to_seconds(15_000_000_000) == 15.0


# --- the JSON reader of un-terminated RPC streams ------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.text(), json_values, max_size=5), st.lists(st.integers(0, 400)))
def test_json_reader_finds_the_end_of_any_object_split_anywhere(
    value: dict[str, object], cuts: list[int]
) -> None:
    wire = json.dumps(value, ensure_ascii=False).encode() + b"trailing bytes are ignored"
    end = len(json.dumps(value, ensure_ascii=False).encode())
    reader = JsonObjectReader("Test")
    got = None
    start = 0
    for point in sorted({min(c, len(wire)) for c in cuts} | {len(wire)}):
        result = reader.feed(wire[start:point])
        start = point
        if result is not None:
            got = result
            assert point >= end  # complete only once the closing brace is in
            break
        assert point < end or start == 0
    assert got == value


def test_json_reader_braces_and_escapes_inside_strings() -> None:
    reader = JsonObjectReader("Test")
    assert reader.feed(b' \n{"a":"}{\\') is None  # escape at the end of a piece
    assert reader.feed(b'"]","b":[{}]') is None
    assert reader.feed(b"}") == {"a": '}{"]', "b": [{}]}
    assert reader.done


@pytest.mark.parametrize("raw", [b"[1]", b'"x"', b"x{}"])
def test_json_reader_wants_an_object(raw: bytes) -> None:
    with pytest.raises(MessageError):
        JsonObjectReader("Test").feed(raw)


def test_json_reader_limits_and_truncation() -> None:
    reader = JsonObjectReader("Test", limit=10)
    with pytest.raises(MessageError):
        reader.feed(b'{"a":"' + b"x" * 20)
    short = JsonObjectReader("Test")
    short.feed(b'{"a":')
    with pytest.raises(MessageError) as caught:
        short.finish()
    assert "ended inside" in caught.value.reason
    broken = JsonObjectReader("Bind")
    with pytest.raises(MessageError) as not_json:
        broken.feed(b'{"a":,}')
    assert not_json.value.where == "Bind"
