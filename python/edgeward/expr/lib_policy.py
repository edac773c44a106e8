"""Implementations of the Traffic Policy functions declared in
`policy_env.FUNCTIONS` (docs/cel.md §11.4)."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import ipaddress
import json
import math
import random
import re
import zlib
from collections.abc import Callable
from typing import Any, Final

import xxhash

from edgeward.expr import goneturl
from edgeward.expr.celtypes import Type, declare
from edgeward.expr.errors import EvalError
from edgeward.expr.functions import Overload, overload
from edgeward.expr.policy_env import FUNCTIONS, URL_OBJECT
from edgeward.expr.values import (
    INT64_MAX,
    INT64_MIN,
    CelMap,
    check_depth,
    check_length,
    format_double_g,
    format_duration,
    format_timestamp,
    from_python,
    kind,
    list_items,
    map_items,
    map_lookup,
    missing,
    type_name,
)

# --- IP addresses ------------------------------------------------------------------------

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ip(text: str) -> IpAddress | None:
    """An address (IPv4-mapped IPv6 as IPv4), or None. Zone ids are invalid."""
    if "%" in text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=1024)  # CIDRs are mostly constants of a policy
def parse_cidr(text: str) -> IpNetwork | None:
    """A CIDR (host bits allowed; a bare address is /32 or /128), or None."""
    if "%" in text:
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def in_cidr_range(ip: str, cidr: str) -> bool:
    address, network = parse_ip(ip), parse_cidr(cidr)
    if address is None or network is None or address.version != network.version:
        return False
    return address in network


def in_cidr_ranges(ip: str, cidrs: Any) -> bool:
    return any(kind(cidr) == "string" and in_cidr_range(ip, cidr) for cidr in list_items(cidrs))


def _check_cidr(_ip: Any, cidr: Any) -> None:
    if isinstance(cidr, str) and parse_cidr(cidr) is None:
        raise EvalError("invalid_argument", f"invalid CIDR {cidr!r}")


def _check_cidrs(_ip: Any, cidrs: Any) -> None:
    if isinstance(cidrs, list | tuple):
        for cidr in cidrs:
            _check_cidr(None, cidr)


_PRIVATE: Final = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


def is_private_ip(text: str) -> bool:
    address = parse_ip(text)
    return isinstance(address, ipaddress.IPv4Address) and any(address in n for n in _PRIVATE)


# --- encodings ------------------------------------------------------------------------------

_BASE64: Final = re.compile(r"[A-Za-z0-9+/]*", re.ASCII)


def base64_encode(data: bytes | str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def base64_decode(text: str) -> bytes:
    """Standard alphabet; padding optional (cel-go tries padded, then raw)."""
    body = text[:-2] if text.endswith("==") else text[:-1] if text.endswith("=") else text
    padded = body != text
    if not _BASE64.fullmatch(body) or len(body) % 4 == 1 or (padded and len(text) % 4):
        raise EvalError("conversion", "invalid base64")
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4))
    except binascii.Error:
        raise EvalError("conversion", "invalid base64") from None


def decode_base64_text(text: str) -> str:
    """`s.decodeBase64()`: `base64.decode`, read as UTF-8 text."""
    try:
        return base64_decode(text).decode("utf-8")
    except UnicodeDecodeError:
        raise EvalError("conversion", "the decoded base64 is not valid UTF-8") from None


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64_encode(f"{user}:{password}")


_UNRESERVED: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
)


def url_escape(text: str) -> str:
    """Go's url.QueryEscape."""
    out = []
    for byte in text.encode("utf-8"):
        if byte in _UNRESERVED:
            out.append(chr(byte))
        elif byte == 0x20:
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


_HEXDIGITS: Final = frozenset("0123456789abcdefABCDEF")


def url_unescape(text: str) -> str:
    """Go's url.QueryUnescape; a bad escape or invalid UTF-8 is `conversion`."""
    out = bytearray()
    i = 0
    raw = text.encode("utf-8")
    while i < len(raw):
        byte = raw[i]
        if byte == 0x25:  # '%'
            pair = raw[i + 1 : i + 3].decode("ascii", errors="replace")
            if len(pair) != 2 or not set(pair) <= _HEXDIGITS:
                raise EvalError("conversion", f"invalid URL escape in {text!r}")
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(0x20 if byte == 0x2B else byte)
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise EvalError("conversion", "unescaped text is not valid UTF-8") from None


# --- URLs ------------------------------------------------------------------------------------

URL_TYPE: Final = declare(URL_OBJECT, "URL")


def is_url(text: str) -> bool:
    """An absolute URI or an absolute path: Go's `url.ParseRequestURI`
    accepts it (as Kubernetes' CEL `isURL`)."""
    try:
        goneturl.parse_request_uri(text)
    except goneturl.URLError:
        return False
    return True


def parse_url(text: str) -> CelMap:
    """Go's `url.Parse`, as a map of `URL_OBJECT`'s fields."""
    try:
        url = goneturl.parse(text)
    except goneturl.URLError as exc:
        raise EvalError("conversion", f"invalid URL: {exc}") from None
    username, password, password_set = url.user or ("", "", False)
    user = CelMap.build(
        [("username", username), ("password", password), ("password_set", password_set)]
    )
    return CelMap.build(
        [
            ("scheme", url.scheme),
            ("opaque", url.opaque),
            ("user", user),
            ("host", url.host),
            ("path", url.path),
            ("raw_path", url.raw_path),
            ("omit_host", url.omit_host),
            ("force_query", url.force_query),
            ("raw_query", url.raw_query),
            ("fragment", url.fragment),
            ("raw_fragment", url.raw_fragment),
        ]
    )


# --- JSON ----------------------------------------------------------------------------------

MAX_JSON_DEPTH: Final = 100


def json_encode(value: Any) -> str:
    out = _JsonOut()
    _write_json(from_python(value), out, 0)
    return "".join(out.parts)


class _JsonOut:
    """The text `json.encode` builds, its length checked against MAX_SIZE
    after each piece (a list may hold one long string many times)."""

    __slots__ = ("parts", "size")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def push(self, piece: str) -> None:
        self.size += len(piece)
        check_length(self.size)
        self.parts.append(piece)


def _write_json(value: Any, out: _JsonOut, level: int) -> None:
    k = kind(value)
    if k == "null":
        out.push("null")
    elif k == "bool":
        out.push("true" if value else "false")
    elif k in ("int", "uint"):
        out.push(str(int(value)))
    elif k == "double":
        if not math.isfinite(value):
            raise EvalError("invalid_argument", f"{format_double_g(value)} is not valid JSON")
        out.push(format_double_g(value))
    elif k == "string":
        out.push(json.dumps(value, ensure_ascii=False))
    elif k == "bytes":
        out.push(json.dumps(base64_encode(value)))
    elif k == "timestamp":
        out.push(json.dumps(format_timestamp(value)))
    elif k == "duration":
        out.push(json.dumps(format_duration(value)))
    elif k == "type":
        out.push(json.dumps(value.name))
    elif k == "list":
        check_depth(level)
        out.push("[")
        for i, item in enumerate(list_items(value)):
            if i:
                out.push(",")
            _write_json(item, out, level + 1)
        out.push("]")
    else:
        check_depth(level)
        out.push("{")
        for i, (key, item) in enumerate(map_items(value)):
            if kind(key) != "string":
                raise EvalError(
                    "invalid_argument", f"JSON object keys must be strings, not {type_name(key)}"
                )
            if i:
                out.push(",")
            out.push(json.dumps(key, ensure_ascii=False))
            out.push(":")
            _write_json(item, out, level + 1)
        out.push("}")


def _json_depth_ok(text: str) -> bool:
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _json_int(text: str) -> int | float:
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else float(text)


def json_decode(text: str) -> Any:
    if not _json_depth_ok(text):
        raise EvalError("conversion", f"JSON nested deeper than {MAX_JSON_DEPTH}")
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_int=_json_int)
        return _from_json(data)
    except (ValueError, RecursionError) as exc:
        raise EvalError("conversion", f"invalid JSON: {exc}") from None


def _from_json(data: Any) -> Any:
    if isinstance(data, dict):
        return CelMap.build([(_from_json(k), _from_json(v)) for k, v in data.items()])
    if isinstance(data, list):
        return [_from_json(v) for v in data]
    if isinstance(data, float) and not math.isfinite(data):
        raise ValueError("number out of range")
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("lone surrogate in a string") from None
    return data


def is_json(text: str) -> bool:
    try:
        json_decode(text)
    except EvalError:
        return False
    return True


# --- query strings -------------------------------------------------------------------------


def query_encode(mapping: Any) -> str:
    pairs: list[tuple[str, str]] = []
    for key, value in map_items(mapping):
        if kind(key) != "string":
            raise EvalError("invalid_argument", "query string keys must be strings")
        values = list(list_items(value)) if kind(value) == "list" else [value]
        for item in values:
            if kind(item) != "string":
                raise EvalError("invalid_argument", "query string values must be strings")
            pairs.append((key, item))
    pairs.sort(key=lambda pair: pair[0].encode("utf-8"))
    return "&".join(f"{url_escape(k)}={url_escape(v)}" for k, v in pairs)


def query_decode(text: str) -> CelMap:
    """Go's url.ParseQuery: `&`-separated, `;` is an error."""
    values: dict[str, list[str]] = {}
    for part in text.split("&"):
        if not part:
            continue
        if ";" in part:
            raise EvalError("conversion", "invalid semicolon separator in query")
        key, _, value = part.partition("=")
        values.setdefault(url_unescape(key), []).append(url_unescape(value))
    return CelMap.build(list(values.items()))


def is_query_string(text: str) -> bool:
    try:
        query_decode(text)
    except EvalError:
        return False
    return True


# --- hashes -------------------------------------------------------------------------------


def _crc64_table() -> list[int]:
    poly = 0xD800000000000000  # ISO 3309, reflected (Go hash/crc64.ISO)
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC64_TABLE: Final = _crc64_table()


def crc64(data: bytes) -> bytes:
    crc = 0xFFFFFFFFFFFFFFFF
    for byte in data:
        crc = _CRC64_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return (crc ^ 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")


_DIGESTS: Final[dict[str, Callable[[bytes], bytes]]] = {
    "md5": lambda b: hashlib.md5(b).digest(),
    "sha1": lambda b: hashlib.sha1(b).digest(),
    "sha256": lambda b: hashlib.sha256(b).digest(),
    "sha512": lambda b: hashlib.sha512(b).digest(),
    "crc32": lambda b: zlib.crc32(b).to_bytes(4, "big"),
    "crc64": crc64,
    "xxhash64": xxhash.xxh64_digest,  # seed 0, big-endian (canonical) bytes
}


def _hasher(algorithm: str) -> Callable[..., str]:
    digest = _DIGESTS[algorithm]

    def hash_text(text: str, encoding: str = "hex") -> str:
        raw = digest(text.encode("utf-8"))
        if encoding == "hex":
            return raw.hex()
        if encoding == "base64":
            return base64.b64encode(raw).decode("ascii")
        raise EvalError(
            "invalid_argument", f"hash format must be 'hex' or 'base64', not {encoding!r}"
        )

    return hash_text


# --- request helpers ----------------------------------------------------------------------


def _ascii_lower(text: str) -> str:
    return text.translate(_LOWER)


_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _values(mapping: Any, key: str) -> Any:
    found = map_lookup(mapping, key)
    return [] if missing(found) else from_python(found)


def get_header(headers: Any, name: str) -> Any:
    return _values(headers, _ascii_lower(name))


def has_header(headers: Any, name: str) -> bool:
    return not missing(map_lookup(headers, _ascii_lower(name)))


def get_param(params: Any, name: str) -> Any:
    return _values(params, name)


def has_param(params: Any, name: str) -> bool:
    return not missing(map_lookup(params, name))


def get_cookie(cookies: Any, name: str) -> Any:
    found = map_lookup(cookies, name)
    if not missing(found):
        for cookie in list_items(from_python(found)):
            return cookie
    raise EvalError("no_such_key", f"no cookie {name!r}")


def has_cookie(cookies: Any, name: str) -> bool:
    found = map_lookup(cookies, name)
    return not missing(found) and len(from_python(found)) > 0


def _bound_by_the_checker(*_args: Any) -> Any:
    raise AssertionError("secrets.get is compiled to a SecretLookup node")


def random_int(low: int = 0, high: int = 1) -> int:
    if low > high:
        raise EvalError("invalid_argument", f"rand.int: min {low} is greater than max {high}")
    return random.randint(low, high)


# --- the table -----------------------------------------------------------------------------

_IMPLEMENTATIONS: Final[dict[str, Callable[..., Any]]] = {
    "inCidrRange": in_cidr_range,
    "inCidrRanges": in_cidr_ranges,
    "base64.encode": base64_encode,
    "base64.decode": base64_decode,
    "basic_auth.encode": basic_auth,
    "url.escape": url_escape,
    "url.unescape": url_unescape,
    "escapeUrl": url_escape,
    "unescapeUrl": url_unescape,
    "json.encode": json_encode,
    "json.decode": json_decode,
    "decodeJson": json_decode,
    "encodeJson": json_encode,
    "isJson": is_json,
    "queryString.encode": query_encode,
    "encodeQueryString": query_encode,
    "queryString.decode": query_decode,
    "decodeQueryString": query_decode,
    "isQueryString": is_query_string,
    "isPrivateIp": is_private_ip,
    "getReqHeader": get_header,
    "hasReqHeader": has_header,
    "getResHeader": get_header,
    "hasResHeader": has_header,
    "getQueryParam": get_param,
    "hasQueryParam": has_param,
    "getReqCookie": get_cookie,
    "hasReqCookie": has_cookie,
    "getResCookie": get_cookie,
    "hasResCookie": has_cookie,
    "secrets.get": _bound_by_the_checker,
    "decodeBase64": decode_base64_text,
    "encodeBase64": base64_encode,
    "isURL": is_url,
    "parseUrl": parse_url,
    "url.parse": parse_url,
    "rand.double": random.random,
    "rand.int": random_int,
    **{name: _hasher(name) for name in _DIGESTS},
    **{f"hash.{name}": _hasher(name) for name in _DIGESTS},
}
_CONSTANT_CHECKS: Final[dict[str, Callable[..., None]]] = {
    "inCidrRange": _check_cidr,
    "inCidrRanges": _check_cidrs,
}


def _url_type(_args: tuple[Type, ...]) -> Type:
    return URL_TYPE


def _overloads() -> list[Overload]:
    return [
        overload(
            name,
            params,
            _url_type if result == "URL" else result,
            _IMPLEMENTATIONS[name],
            receiver=style == "receiver",
            check_constants=_CONSTANT_CHECKS.get(name),
        )
        for name, style, params, result in FUNCTIONS
    ]


OVERLOADS: Final = _overloads()
