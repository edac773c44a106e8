"""The gateway functions of issue #12 on both backends: `hash.xxhash64`,
`decodeBase64()`/`encodeBase64()`, `isURL()`, `parseUrl()`/`url.parse()`,
`list.sortBy()`, the pricing-page aliases and `secrets.get` bound to the
Env's table. Expected values come from the documentation (the macros page),
xxHash's published vectors, Go's `net/url` tests and Kubernetes' `isURL`
examples; the properties hold native and reference to the same outcome."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edgeward.expr as reference
from edgeward.expr import goneturl, lib_policy
from edgeward.expr.functions import ALIASES, VARIABLE_ALIASES
from edgeward.expr.policy_env import VARIABLES

from . import strategies as cel_st
from .backends import native_cel
from .test_agreement import outcome

SECRETS = {"vault": {"token": "t0p-s3cret", "other": "x"}, "empty": {}}
# The policy variables, and a few for the tests' own values.
SCHEMA = {**VARIABLES, "s": "string", "v": "dyn", "n": "dyn", "k": "list(dyn)"}


def evaluate(cel: Any, source: str, activation: dict[str, Any] | None = None) -> Any:
    env = cel.Env(SCHEMA, secrets=SECRETS)
    return cel.compile(source, env=env).evaluate(activation or {})


def eval_error(cel: Any, source: str, activation: dict[str, Any] | None = None) -> str:
    with pytest.raises(cel.EvalError) as info:
        evaluate(cel, source, activation)
    return str(info.value.kind)


# --- xxHash64 -------------------------------------------------------------------------------


def sanity_buffer(length: int) -> bytes:
    """xxHash's `fillTestBuffer` (xsum_sanity_check.c)."""
    prime32, prime64 = 2654435761, 11400714785074694797
    gen, out = prime32, bytearray()
    for _ in range(length):
        out.append(gen >> 56)
        gen = (gen * prime64) % 2**64
    return bytes(out)


# XSUM_XXH64_testdata, seed 0: (length of the sanity buffer, digest).
XXH64_VECTORS = [
    (0, "ef46db3751d8e999"),
    (1, "e934a84adb052768"),
    (4, "9136a0dca57457ee"),
    (14, "8282dcc4994e35c8"),
    (222, "b641ae8cb691c174"),
]


@pytest.mark.parametrize(("length", "digest"), XXH64_VECTORS)
def test_xxhash64_reference_matches_the_published_vectors(length: int, digest: str) -> None:
    assert lib_policy._DIGESTS["xxhash64"](sanity_buffer(length)).hex() == digest


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # The macros page.
        ("hash.xxhash64('hello')", "26c7827d889f6da3"),
        ("hash.xxhash64('hello', 'hex')", "26c7827d889f6da3"),
        ("hash.xxhash64('hello', 'base64')", "JseCfYifbaM="),
        ("'hello'.xxhash64()", "26c7827d889f6da3"),
        ("'hello'.xxhash64('base64')", "JseCfYifbaM="),
        # The published vectors whose buffer is UTF-8 text (0 and 1 bytes).
        ("hash.xxhash64('')", "ef46db3751d8e999"),
        ("hash.xxhash64('\\x00')", "e934a84adb052768"),
    ],
)
def test_xxhash64(cel: Any, source: str, expected: str) -> None:
    assert evaluate(cel, source) == expected


def test_xxhash64_bad_format(cel: Any) -> None:
    assert eval_error(cel, "'a'.xxhash64(dyn('hex2'))") == "invalid_argument"


# --- base64 receivers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("'c29tZTp0aGluZw=='.decodeBase64()", "some:thing"),  # the macros page
        ("'some:thing'.encodeBase64()", "c29tZTp0aGluZw=="),  # the macros page
        ("'aGVsbG8'.decodeBase64()", "hello"),  # unpadded, as base64.decode
        ("b'\\xff\\x00'.encodeBase64()", "/wA="),
        ("'é'.encodeBase64().decodeBase64()", "é"),
        ("utility.string_decode_base64('aGk=')", "hi"),
    ],
)
def test_base64_receivers(cel: Any, source: str, expected: str) -> None:
    assert evaluate(cel, source) == expected


@pytest.mark.parametrize("source", ["'a'.decodeBase64()", "'/w=='.decodeBase64()"])
def test_decode_base64_errors(cel: Any, source: str) -> None:
    # Not base64, or bytes that are not UTF-8 text.
    assert eval_error(cel, source) == "conversion"


# --- URLs ----------------------------------------------------------------------------------

_EMPTY = {
    "scheme": "",
    "opaque": "",
    "user": {"username": "", "password": "", "password_set": False},
    "host": "",
    "path": "",
    "raw_path": "",
    "omit_host": False,
    "force_query": False,
    "raw_query": "",
    "fragment": "",
    "raw_fragment": "",
}


def _url(**fields: Any) -> dict[str, Any]:
    user = fields.pop("user", None)
    out = {**_EMPTY, **fields}
    if user is not None:
        out["user"] = {"username": user[0], "password": user[1], "password_set": user[2]}
    return out


# Go's url_test.go (urltests), the fields Go's url.Parse gives.
GO_URLS = [
    ("https://ngrok.com", _url(scheme="https", host="ngrok.com")),  # the macros page
    ("http://www.google.com/", _url(scheme="http", host="www.google.com", path="/")),
    (
        "http://www.google.com/file%20one%26two",
        _url(scheme="http", host="www.google.com", path="/file one&two",
             raw_path="/file%20one%26two"),
    ),
    (
        "http://www.google.com/#file%20one%26two",
        _url(scheme="http", host="www.google.com", path="/", fragment="file one&two",
             raw_fragment="file%20one%26two"),
    ),
    ("ftp://webmaster@www.google.com/",
     _url(scheme="ftp", user=("webmaster", "", False), host="www.google.com", path="/")),
    ("ftp://john%20doe@www.google.com/",
     _url(scheme="ftp", user=("john doe", "", False), host="www.google.com", path="/")),
    ("http://www.google.com/?", _url(scheme="http", host="www.google.com", path="/",
                                     force_query=True)),
    ("http://www.google.com/?foo=bar?", _url(scheme="http", host="www.google.com", path="/",
                                             raw_query="foo=bar?")),
    ("http://www.google.com/?q=go+language", _url(scheme="http", host="www.google.com",
                                                  path="/", raw_query="q=go+language")),
    ("mailto:/webmaster@golang.org", _url(scheme="mailto", path="/webmaster@golang.org",
                                          omit_host=True)),
    ("mailto:webmaster@golang.org", _url(scheme="mailto", opaque="webmaster@golang.org")),
    ("/foo?query=http://bad", _url(path="/foo", raw_query="query=http://bad")),
    ("//foo", _url(host="foo")),
    ("//user@foo/path?a=b", _url(user=("user", "", False), host="foo", path="/path",
                                 raw_query="a=b")),
    ("///threeslashes", _url(path="///threeslashes")),
    ("http://user:password@google.com", _url(scheme="http", user=("user", "password", True),
                                             host="google.com")),
    ("http://j@ne:password@google.com", _url(scheme="http", user=("j@ne", "password", True),
                                             host="google.com")),
    ("http://[fe80::1%25en0]/", _url(scheme="http", host="[fe80::1%en0]", path="/")),
    ("http://[fe80::1%25%65%6e%301-._~]:8080/",
     _url(scheme="http", host="[fe80::1%en01-._~]:8080", path="/")),
    ("http://rest.rsc.io/foo%2fbar/baz%2Fquux?alt=media",
     _url(scheme="http", host="rest.rsc.io", path="/foo/bar/baz/quux",
          raw_path="/foo%2fbar/baz%2Fquux", raw_query="alt=media")),
    ("http://example.com/oid/[order_id]",
     _url(scheme="http", host="example.com", path="/oid/[order_id]",
          raw_path="/oid/[order_id]")),
    ("HTTP://www.google.com/", _url(scheme="http", host="www.google.com", path="/")),
    ("*", _url(path="*")),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), GO_URLS, ids=[u for u, _ in GO_URLS])
def test_parse_url_gives_go_net_url_fields(cel: Any, text: str, expected: dict[str, Any]) -> None:
    assert evaluate(cel, "s.parseUrl()", {"s": text}) == expected
    assert evaluate(cel, "url.parse(s)", {"s": text}) == expected


@pytest.mark.parametrize(
    "text",
    [
        "http://[::1]a",  # invalid port after host
        "http://%41:8080/",  # an ASCII escape in a host
        "http://a b.com/",  # a space in a host
        ":foo",  # missing protocol scheme
        "http://x:y:z",  # invalid port
        "1http://foo.com",  # a colon in the first path segment
        "cache_object:foo/bar",  # the same (golang.org/issue/16822)
        "/%zz",  # invalid escape
        "http://foo\x7f",  # a control character
        "/%ff",  # decodes to bytes that are not UTF-8
    ],
)
def test_parse_url_errors(cel: Any, text: str) -> None:
    assert eval_error(cel, "url.parse(s)", {"s": text}) == "conversion"


def test_url_fields_are_typed(cel: Any) -> None:
    assert evaluate(cel, "url.parse('https://a.b/x?y').path") == "/x"
    assert evaluate(cel, "url.parse('https://u:p@a.b').user.password") == "p"
    assert evaluate(cel, "utility.url_parse('/a').path") == "/a"
    with pytest.raises(cel.PolicyExprError, match="undefined field 'Path'"):
        cel.compile("url.parse('x').Path", env=cel.Env(VARIABLES))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://ngrok.com", True),  # the macros page
        ("not a url", False),  # the macros page
        ("https://example.com:80/path?query=val#fragment", True),  # Kubernetes' isURL
        ("/absolute-path", True),
        ("https://a:b:c/", False),
        ("../relative-path", False),
        ("", False),
    ],
)
def test_is_url(cel: Any, text: str, expected: bool) -> None:
    assert evaluate(cel, "s.isURL()", {"s": text}) is expected


@settings(max_examples=300)
@given(text=cel_st.URLS)
def test_url_functions_agree(text: str) -> None:
    native = native_cel()
    if native is None:
        pytest.skip("the native CEL is not built")
    for source in ("url.parse(s)", "s.isURL()", "s.parseUrl().user"):
        activation = {"s": text}
        assert outcome(native, source, activation) == outcome(reference, source, activation)


@settings(max_examples=200)
@given(text=cel_st.URL_PARTS)
def test_is_url_is_parse_request_uri(text: str) -> None:
    try:
        goneturl.parse_request_uri(text)
        expected = True
    except goneturl.URLError:
        expected = False
    assert reference.compile("s.isURL()").evaluate({"s": text}) is expected


# --- sortBy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # The macros page (its Player messages written as maps).
        (
            "[{'name': 'foo', 'score': 0}, {'name': 'bar', 'score': -10},"
            " {'name': 'baz', 'score': 1000}].sortBy(e, e.score).map(e, e.name)",
            ["bar", "foo", "baz"],
        ),
        ("[3, 1, 2].sortBy(x, -x)", [3, 2, 1]),
        ("['b', 'a', 'c'].sortBy(s, s)", ["a", "b", "c"]),
        ("[[1, 'b'], [2, 'a'], [3, 'b'], [4, 'a']].sortBy(p, p[1]).map(p, p[0])", [2, 4, 1, 3]),
        ("[].sortBy(x, x)", []),
        ("[1, 2u, 0.5].sortBy(x, x)", [0.5, 1, 2]),
    ],
)
def test_sort_by(cel: Any, source: str, expected: Any) -> None:
    result = evaluate(cel, source)
    assert result == expected
    assert [type(v) for v in result] == [type(v) for v in expected] or expected == [0.5, 1, 2]


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("[1, 2].sortBy(x, x == 1 ? 'a' : 1)", "invalid_argument"),  # keys of two kinds
        ("[1, 2].sortBy(x, [x])", "invalid_argument"),  # keys that do not order
        ("[1, 2].sortBy(x, x == 1 ? 0.0 / 0.0 : 1.0)", "invalid_argument"),  # NaN
        ("dyn({'a': 1}).sortBy(x, x)", "no_such_overload"),  # a map
        ("[1, 0].sortBy(x, 1 / x)", "division_by_zero"),
    ],
)
def test_sort_by_errors(cel: Any, source: str, kind: str) -> None:
    assert eval_error(cel, source) == kind


def test_sort_by_compile_errors(cel: Any) -> None:
    for source in ("{'a': 1}.sortBy(x, x)", "[1].sortBy(1, 2)"):
        with pytest.raises(cel.PolicyExprError):
            cel.compile(source)


def test_sort_by_counts_iterations(cel: Any) -> None:
    program = cel.compile("lists.range(6).sortBy(x, -x)", env=cel.Env(max_iterations=10))
    with pytest.raises(cel.EvalError) as info:
        program.evaluate({})
    assert info.value.kind == "limit"


_KEYS = st.one_of(
    st.lists(cel_st.INT64, max_size=6),
    st.lists(cel_st.TEXT, max_size=6),
    st.lists(st.one_of(cel_st.INT64, cel_st.DOUBLES, cel_st.TEXT), max_size=4),
)


@given(keys=_KEYS)
def test_sort_by_is_stable_and_agrees(keys: list[Any]) -> None:
    source = "lists.range(size(li)).sortBy(i, x[i])"
    activation = {"li": [0] * len(keys), "x": keys}
    expected = outcome(reference, source, activation)
    same_kind = all(isinstance(k, int) for k in keys) or all(isinstance(k, str) for k in keys)
    if same_kind:  # stable: equal keys keep their order
        assert expected[0] == "value"
        order = [v for _, v in expected[1][1]]
        assert order == sorted(range(len(keys)), key=lambda i: (keys[i], i))
    native = native_cel()
    if native is not None:
        assert outcome(native, source, activation) == expected


# --- aliases -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("b64.decode('aGk=')", "base64.decode('aGk=')"),
        ("b64.encode(b'hi')", "base64.encode(b'hi')"),
        ("security.secret('vault', 'token')", "secrets.get('vault', 'token')"),
        ("utility.base64_decode('aGk=')", "base64.decode('aGk=')"),
        ("utility.base64_encode('hi')", "base64.encode('hi')"),
        ("utility.basic_auth_encode('u', 'p')", "basic_auth.encode('u', 'p')"),
        (
            "utility.in_cidr_range('10.0.0.1', '10.0.0.0/8')",
            "inCidrRange('10.0.0.1', '10.0.0.0/8')",
        ),
        (
            "utility.in_cidr_ranges('1.1.1.1', ['10.0.0.0/8'])",
            "inCidrRanges('1.1.1.1', ['10.0.0.0/8'])",
        ),
        ("utility.json_decode('[1]')", "json.decode('[1]')"),
        ("utility.json_encode({'a': 1})", "json.encode({'a': 1})"),
        ("utility.list_encode_json([1, 'a'])", "[1, 'a'].encodeJson()"),
        ("utility.object_encode_json({'a': [1]})", "{'a': [1]}.encodeJson()"),
        ("utility.object_encode_query_string({'a': 'b c'})", "{'a': 'b c'}.encodeQueryString()"),
        ("utility.query_string_decode('a=1&a=2')", "queryString.decode('a=1&a=2')"),
        ("utility.query_string_encode({'a': 'b'})", "queryString.encode({'a': 'b'})"),
        ("utility.rand_int(4, 4)", "rand.int(4, 4)"),
        ("utility.rand_double() < 1.0", "rand.double() < 1.0"),
        ("utility.string_decode_base64('aGk=')", "'aGk='.decodeBase64()"),
        ("utility.string_decode_json('{\"a\": 1}')", "'{\"a\": 1}'.decodeJson()"),
        ("utility.string_decode_query_string('a=1')", "'a=1'.decodeQueryString()"),
        ("utility.string_encode_base64('hi')", "'hi'.encodeBase64()"),
        ("utility.string_escape_url('a b')", "'a b'.escapeUrl()"),
        ("utility.string_is_json('1')", "'1'.isJson()"),
        ("utility.string_is_query_string('a=%zz')", "'a=%zz'.isQueryString()"),
        ("utility.string_is_url('/a')", "'/a'.isURL()"),
        ("utility.string_parse_url('/a?b')", "'/a?b'.parseUrl()"),
        ("utility.string_unescape_url('a%20b')", "'a%20b'.unescapeUrl()"),
        ("utility.url_escape('a/b')", "url.escape('a/b')"),
        ("utility.url_parse('http://h/p')", "url.parse('http://h/p')"),
        ("utility.url_unescape('a+b')", "url.unescape('a+b')"),
    ],
)
def test_alias_is_its_canonical_function(cel: Any, alias: str, canonical: str) -> None:
    assert evaluate(cel, alias) == evaluate(cel, canonical)


def test_every_alias_is_tested() -> None:
    tested = {
        source.split("(")[0]
        for source, _ in test_alias_is_its_canonical_function.pytestmark[0].args[1]  # type: ignore[attr-defined]
    }
    assert tested == set(ALIASES)


REQUEST = {
    "req": {
        "method": "POST",
        "url": {"path": "/p", "query": "a=1", "uri": "/p?a=1", "scheme": "https"},
        "user_agent": {"": "curl/8"},
    },
    "res": {"status_code": 201},
}


@pytest.mark.parametrize(
    ("alias", "variable"),
    [
        ("http.path()", "req.url.path"),
        ("http.query()", "req.url.query"),
        ("http.request_method()", "req.method"),
        ("http.request_uri()", "req.url.uri"),
        ("http.scheme()", "req.url.scheme"),
        ("http.status()", "res.status_code"),
        ("http.user_agent()", "req.user_agent"),
    ],
)
def test_http_aliases_read_their_variable(cel: Any, alias: str, variable: str) -> None:
    assert evaluate(cel, alias, REQUEST) == evaluate(cel, variable, REQUEST)
    program = cel.compile(alias, env=cel.Env(VARIABLES))
    assert program.references == cel.compile(variable, env=cel.Env(VARIABLES)).references
    assert set(VARIABLE_ALIASES) >= {alias.removesuffix("()")}


@pytest.mark.parametrize(
    "source",
    ["http.path(1)", "utility.string_is_json()", "http.header('x')", "b64.decode(1)"],
)
def test_alias_misuse_is_a_compile_error(cel: Any, source: str) -> None:
    with pytest.raises(cel.PolicyExprError):
        cel.compile(source, env=cel.Env(VARIABLES))


# --- secrets ---------------------------------------------------------------------------------


def test_secrets_get_reads_the_envs_table(cel: Any) -> None:
    assert evaluate(cel, "secrets.get('vault', 'token')") == "t0p-s3cret"
    assert evaluate(cel, "secrets.get(v, n)", {"v": "vault", "n": "other"}) == "x"
    assert eval_error(cel, "secrets.get(v, 'nope')", {"v": "vault"}) == "no_such_key"
    assert eval_error(cel, "secrets.get('empty', dyn('x'))") == "no_such_key"
    assert eval_error(cel, "secrets.get(dyn(1), 'x')") == "no_such_overload"


def test_unknown_constant_secret_is_a_compile_error(cel: Any) -> None:
    env = cel.Env(VARIABLES, secrets=SECRETS)
    for source in ("secrets.get('vault', 'nope')", "secrets.get('nope', 'token')"):
        with pytest.raises(cel.PolicyExprError) as info:
            cel.compile(source, env=env)
        assert "invalid constant argument" in info.value.message
        assert "t0p-s3cret" not in str(info.value)
    with pytest.raises(cel.PolicyExprError):
        cel.interpolate("${secrets.get('vault', 'nope')}", env=env)


def test_without_a_table_secrets_are_unbound(cel: Any) -> None:
    program = cel.compile("secrets.get('vault', 'token')", env=cel.Env(VARIABLES))
    with pytest.raises(cel.EvalError) as info:
        program.evaluate({})
    assert info.value.kind == "unbound"
    # `secrets` is no variable: the table cannot be read as a whole.
    for source in ("secrets", "json.encode(secrets)", "secrets['vault']"):
        with pytest.raises(cel.PolicyExprError):
            cel.compile(source, env=cel.Env(VARIABLES, secrets=SECRETS))


def test_secrets_read(cel: Any) -> None:
    env = cel.Env(SCHEMA, secrets=SECRETS)
    program = cel.compile("secrets.get('vault', 'token') + security.secret('vault', n)", env=env)
    assert program.secrets_read == {("vault", "token"), ("vault", None)}
    assert program.references == {"n"}
    template = cel.interpolate("a ${secrets.get(v, 'other')} ${1}", env=env)
    assert template.secrets_read == {(None, "other")}
    assert cel.compile("1", env=env).secrets_read == frozenset()


def test_secret_values_are_never_shown(cel: Any) -> None:
    env = cel.Env(VARIABLES, secrets=SECRETS)
    assert "t0p-s3cret" not in repr(env)
    program = cel.compile("secrets.get('vault', 'token')", env=env)
    assert "t0p-s3cret" not in repr(program)
    template = cel.interpolate("Bearer ${secrets.get('vault', 'token')}", env=env)
    assert "t0p-s3cret" not in repr(template)
    assert template.render({}) == "Bearer t0p-s3cret"


@pytest.mark.parametrize(
    "secrets",
    [{"v": "not a mapping"}, {"v": {"k": 1}}, {1: {"k": "v"}}, ["v"]],
)
def test_bad_secret_tables(cel: Any, secrets: Any) -> None:
    with pytest.raises(ValueError) as info:
        cel.Env(VARIABLES, secrets=secrets)
    assert "secrets" in str(info.value)


_TABLES = st.dictionaries(
    st.sampled_from(["v", "w", ""]),
    st.dictionaries(st.sampled_from(["k", "n", ""]), cel_st.TEXT, max_size=3),
    max_size=3,
)


@given(table=_TABLES, vault=st.sampled_from(["v", "w", "", "x"]), name=st.sampled_from(["k", "n"]))
def test_secret_lookups_agree(table: dict[str, dict[str, str]], vault: str, name: str) -> None:
    native = native_cel()
    backends = [reference] if native is None else [reference, native]
    results = []
    for cel in backends:
        env = cel.Env(SCHEMA, secrets=table)
        row = []
        for source in (f"secrets.get('{vault}', '{name}')", "secrets.get(v, n)"):
            try:
                value = cel.compile(source, env=env).evaluate({"v": vault, "n": name})
                row.append(("value", value))
            except cel.PolicyExprError:
                row.append(("compile_error",))
            except cel.EvalError as exc:
                row.append(("eval_error", exc.kind))
        results.append(row)
        expected = table.get(vault, {}).get(name)
        if expected is None:
            assert row == [("compile_error",), ("eval_error", "no_such_key")]
        else:
            assert row == [("value", expected), ("value", expected)]
    assert all(r == results[0] for r in results)
