"""Pure-Python twin of the native webhook verifier (`edgeward_native`).

Same API, same verdicts, same reasons: the test suite runs every test on
both and hypothesis checks that they agree. One small function per scheme;
`_PROVIDERS` maps each provider id to its scheme and documented tolerance.
Sources of each row: docs/webhooks.md.

Rules shared by every scheme:
- header names are ASCII case-insensitive; a header the scheme reads that is
  present more than once fails (``duplicate header …``); values are
  stripped of spaces and tabs;
- the expected MAC is encoded (lower-case hex or padded standard base64) and
  compared in constant time (`hmac.compare_digest`) with the presented
  text, hex case-insensitively; any entry of a signature list may match;
- a signed timestamp is 1–18 ASCII digits within `tolerance_s` of `now`,
  in both directions.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any, Literal, cast
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import load_der_public_key

__all__ = ["DEFAULT_TOLERANCE_S", "PROVIDERS", "explain_webhook", "verify_webhook"]

Alg = Literal["sha1", "sha256", "sha512"]
Enc = Literal["hex", "base64"]
HeaderText = str | bytes

DEFAULT_TOLERANCE = 180.0  # ngrok's rule where a provider documents none
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class _Failed(Exception):
    """The request does not verify; `args[0]` is the reason."""


@dataclass(frozen=True, slots=True)
class _Request:
    headers: list[tuple[str, str]]
    body: bytes
    url: str | None
    method: str
    now: float
    tolerance_s: float

    def header(self, name: str, *, required: bool = True) -> str | None:
        found = None
        for key, value in self.headers:
            if key.isascii() and key.lower() == name:
                if found is not None:
                    raise _Failed(f"duplicate header {name}")
                found = value.strip(" \t")
        if found is None and required:
            raise _Failed(f"missing header {name}")
        return found

    def need(self, name: str) -> str:
        value = self.header(name)
        assert value is not None
        return value


# --- shared helpers ---------------------------------------------------------------


def _mac(alg: Alg, key: bytes, *parts: bytes) -> bytes:
    mac = hmac.new(key, digestmod=alg)
    for part in parts:
        mac.update(part)
    return mac.digest()


def _encode(enc: Enc, digest: bytes) -> str:
    return digest.hex() if enc == "hex" else base64.b64encode(digest).decode()


def _matches(enc: Enc, expected: str, presented: str) -> bool:
    given = presented.encode()
    if enc == "hex":
        given = given.lower()  # bytes.lower() folds ASCII only
    return hmac.compare_digest(expected.encode(), given)


def _any_matches(enc: Enc, digest: bytes, presented: Iterable[str]) -> None:
    expected = _encode(enc, digest)
    found = False
    for candidate in presented:
        found |= _matches(enc, expected, candidate)
    if not found:
        raise _Failed("signature mismatch")


def _b64decode(text: str) -> bytes | None:
    """Canonical padded standard base64 only (the native side's rule)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode() == text else None


def _fresh(text: str, req: _Request, *, millis: bool = False) -> None:
    """A unix timestamp (seconds, or milliseconds) within tolerance."""
    if not (0 < len(text) <= 18 and text.isascii() and text.isdigit()):
        raise _Failed("malformed timestamp")
    seconds = float(int(text))
    _within_tolerance(seconds / 1000.0 if millis else seconds, req)


def _within_tolerance(seconds: float, req: _Request) -> None:
    age = req.now - seconds
    if not abs(age) <= req.tolerance_s:
        raise _Failed("timestamp in the future" if age < 0 else "stale timestamp")


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|([+-])(\d{2}):(\d{2}))?",
    re.ASCII,
)


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _rfc3339(text: str, *, naive_is_utc: bool = False) -> float:
    """``YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`` as unix seconds, strictly;
    with `naive_is_utc` (ISO 8601, Orb) the offset may be left out."""
    match = _RFC3339.fullmatch(text)
    if match is None or (match.group(8) is None and not naive_is_utc):
        raise _Failed("malformed timestamp")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    sign, off_h, off_m = match.group(9), int(match.group(10) or 0), int(match.group(11) or 0)
    if not (
        1 <= month <= 12
        and 1 <= day <= (29 if month == 2 and calendar.isleap(year) else _MONTH_DAYS[month - 1])
        and hour <= 23 and minute <= 59 and second <= 59 and off_h <= 23 and off_m <= 59
    ):  # fmt: skip
        raise _Failed("malformed timestamp")
    offset = (off_h * 60 + off_m) * (-1 if sign == "-" else 1)
    whole = _days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
    return float(whole - offset * 60) + (float(match.group(7)) if match.group(7) else 0.0)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm)."""
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    return era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468


def _split_signatures(value: str, header: str, prefix: str, *, list_: bool) -> list[str]:
    if list_:
        items = [i.strip(" \t") for i in value.split(",")]
        found = [i[len(prefix) :] for i in items if i.startswith(prefix)]
    else:
        found = [value[len(prefix) :]] if value.startswith(prefix) else []
    if not found:
        raise _Failed(f"malformed header {header}")
    return found


def _text_secret(secret: bytes) -> str:
    try:
        return secret.decode()
    except UnicodeDecodeError:
        raise ValueError("the secret must be text") from None


def _url(provider: str, req: _Request) -> str:
    if req.url is None:
        raise ValueError(f"provider {provider!r} signs the request URL: pass url=")
    return req.url


def _form(body: bytes) -> list[tuple[str, str]]:
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


def _is_form(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(";")[0].strip(" \t")
    return media.isascii() and media.lower() == "application/x-www-form-urlencoded"


# --- schemes ----------------------------------------------------------------------


def _body(
    secret: bytes, req: _Request, *, header: str, alg: Alg, enc: Enc, prefix: str = "",
    list_: bool = False,
) -> None:  # fmt: skip
    """HMAC of the raw body in one header (a comma list when `list_`)."""
    candidates = _split_signatures(req.need(header), header, prefix, list_=list_)
    _any_matches(enc, _mac(alg, secret, req.body), candidates)


def _timestamped(
    secret: bytes, req: _Request, *, header: str, prefix: str, ts_header: str, lead: str, sep: str
) -> None:
    """HMAC-SHA256 (hex) of ``{lead}{timestamp}{sep}{body}`` (Slack, Zoom…)."""
    value = req.need(header)
    ts = req.need(ts_header)
    candidates = _split_signatures(value, header, prefix, list_=False)
    _fresh(ts, req)
    digest = _mac("sha256", secret, lead.encode(), ts.encode(), sep.encode(), req.body)
    _any_matches("hex", digest, candidates)


def _key_value(secret: bytes, req: _Request, *, header: str, ts_key: str, sig_key: str) -> None:
    """``t=<ts>,v1=<hex>,…`` (Stripe and alike): HMAC-SHA256 of ``{t}.{body}``."""
    items = [i.strip(" \t").partition("=") for i in req.need(header).split(",")]
    pairs = [(key, value) for key, sep, value in items if sep]
    stamps = [value for key, value in pairs if key == ts_key]
    sigs = [value for key, value in pairs if key == sig_key]
    if not stamps or not sigs:
        raise _Failed(f"malformed header {header}")
    _fresh(stamps[0], req)
    digest = _mac("sha256", secret, stamps[0].encode(), b".", req.body)
    _any_matches("hex", digest, sigs)


def _standard_webhooks(secret: bytes, req: _Request) -> None:
    """Standard Webhooks / Svix: base64 of HMAC-SHA256 of ``{id}.{ts}.{body}``."""
    text = _text_secret(secret)
    key = _b64decode(text.removeprefix("whsec_"))
    if key is None:
        raise ValueError("a Standard Webhooks secret is base64, optionally after 'whsec_'")
    prefix = "svix-" if req.header("svix-signature", required=False) is not None else "webhook-"
    msg_id = req.need(prefix + "id")
    ts = req.need(prefix + "timestamp")
    value = req.need(prefix + "signature")
    sigs = [item[3:] for item in value.split(" ") if item.startswith("v1,")]
    if not sigs:
        raise _Failed(f"malformed header {prefix}signature")
    _fresh(ts, req)
    digest = _mac("sha256", key, msg_id.encode(), b".", ts.encode(), b".", req.body)
    _any_matches("base64", digest, sigs)


def _token(secret: bytes, req: _Request, *, header: str) -> None:
    """A shared secret sent verbatim in a header (GitLab, Okta)."""
    if not hmac.compare_digest(req.need(header).encode(), secret):
        raise _Failed("token mismatch")


def _twilio(secret: bytes, req: _Request) -> None:
    """Base64 HMAC-SHA1 of the URL then each sorted ``name + value`` of a
    form body; a JSON body is bound by ``bodySHA256`` in the URL instead.
    The URL is tried with and without its port, as Twilio's SDKs do."""
    url = _url("twilio", req)
    value = req.need("x-twilio-signature")
    body_hash = next((v for k, v in _form(_query(url).encode()) if k == "bodySHA256"), None)
    params: list[tuple[str, str]] = []
    if body_hash is None and _is_form(req.header("content-type", required=False)):
        params = sorted(set(_form(req.body)))
    signed = "".join(name + val for name, val in params).encode()
    found = False
    for variant in _port_variants(url):
        digest = _mac("sha1", secret, variant.encode(), signed)
        found |= _matches("base64", _encode("base64", digest), value)
    if not found:
        raise _Failed("signature mismatch")
    if body_hash is not None and not _matches(
        "hex", hashlib.sha256(req.body).hexdigest(), body_hash
    ):
        raise _Failed("body hash mismatch")


def _query(url: str) -> str:
    return url.split("#", maxsplit=1)[0].partition("?")[2]


def _port_variants(url: str) -> tuple[str, str]:
    """(URL with its port or the scheme's default port, URL without port)."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        return url, url
    start = len(scheme) + 3
    end = next((i for i in range(start, len(url)) if url[i] in "/?#"), len(url))
    authority = url[start:end]
    host_start = authority.rfind("@") + 1
    bracket = authority.rfind("]", host_start)
    colon = authority.rfind(":", bracket if bracket >= 0 else host_start)
    port = authority[colon + 1 :] if colon >= 0 else ""
    if port and port.isascii() and port.isdigit():
        return url, url[: start + colon] + url[end:]
    default = 443 if scheme.isascii() and scheme.lower() == "https" else 80
    return f"{url[:end]}:{default}{url[end:]}", url


def _square(secret: bytes, req: _Request) -> None:
    """Base64 HMAC-SHA256 of the notification URL followed by the body."""
    url = _url("square", req)
    value = req.need("x-square-hmacsha256-signature")
    _any_matches("base64", _mac("sha256", secret, url.encode(), req.body), [value])


_HUBSPOT_DECODED = re.compile(r"%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)", re.IGNORECASE)


def _hubspot(secret: bytes, req: _Request) -> None:
    """v3: base64 HMAC-SHA256 of method + URI + body + timestamp (ms)."""
    url = _url("hubspot", req)
    value = req.need("x-hubspot-signature-v3")
    ts = req.need("x-hubspot-request-timestamp")
    _fresh(ts, req, millis=True)
    uri = _HUBSPOT_DECODED.sub(lambda m: chr(int(m.group(1), 16)), url)
    digest = _mac("sha256", secret, req.method.encode(), uri.encode(), req.body, ts.encode())
    _any_matches("base64", digest, [value])


def _mailgun(secret: bytes, req: _Request) -> None:
    """Hex HMAC-SHA256 of ``timestamp + token``, all three in the body."""
    if _is_form(req.header("content-type", required=False)):
        fields = _mailgun_form(req.body)
    else:
        fields = _mailgun_json(req.body)
    if fields is None:
        raise _Failed("malformed body")
    ts, token, signature = fields
    _fresh(ts, req)
    _any_matches("hex", _mac("sha256", secret, ts.encode(), token.encode()), [signature])


_MAILGUN_FIELDS = ("timestamp", "token", "signature")


def _mailgun_form(body: bytes) -> tuple[str, str, str] | None:
    params = _form(body)
    values = [[v for k, v in params if k == name] for name in _MAILGUN_FIELDS]
    if any(len(v) != 1 for v in values):
        return None
    return values[0][0], values[1][0], values[2][0]


def _finite(text: str, convert: Callable[[str], Any]) -> Any:
    # serde_json (the native side) rejects numbers beyond f64's range.
    if float(text) in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return convert(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def _mailgun_json(body: bytes) -> tuple[str, str, str] | None:
    try:
        doc = json.loads(
            body.decode(),
            parse_constant=_reject_constant,
            parse_float=partial(_finite, convert=float),
            parse_int=partial(_finite, convert=int),
        )
        json.dumps(doc, ensure_ascii=False).encode()  # lone surrogates, as serde_json
    except (ValueError, RecursionError):
        return None
    signature = doc.get("signature") if isinstance(doc, dict) else None
    if not isinstance(signature, dict):
        return None
    out = []
    for name in _MAILGUN_FIELDS:
        value = signature.get(name)
        if name == "timestamp" and type(value) is int and 0 <= value < 2**64:
            value = str(value)
        if not isinstance(value, str):
            return None
        out.append(value)
    return out[0], out[1], out[2]


def _sendgrid(secret: bytes, req: _Request) -> None:
    """ECDSA P-256 / SHA-256 over ``timestamp + body``; the secret is the
    base64 DER public key. `cryptography` verifies (the stdlib has no ECDSA)."""
    der = _b64decode(_text_secret(secret).strip(" \t"))
    try:
        key = load_der_public_key(der) if der is not None else None
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("the SendGrid secret is the base64 DER P-256 public key")
    header = "x-twilio-email-event-webhook-signature"
    value = req.need(header)
    ts = req.need("x-twilio-email-event-webhook-timestamp")
    signature = _b64decode(value)
    if signature is None or not _valid_der_signature(signature):
        raise _Failed(f"malformed header {header}")
    _fresh(ts, req)
    try:
        key.verify(signature, ts.encode() + req.body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise _Failed("signature mismatch") from None


def _valid_der_signature(der: bytes) -> bool:
    try:
        r, s = decode_dss_signature(der)
    except ValueError:
        return False
    return 0 < r < _P256_ORDER and 0 < s < _P256_ORDER


def _zendesk(secret: bytes, req: _Request) -> None:
    """Base64 HMAC-SHA256 of ``timestamp + body``; RFC 3339 timestamp."""
    value = req.need("x-zendesk-webhook-signature")
    ts = req.need("x-zendesk-webhook-signature-timestamp")
    _within_tolerance(_rfc3339(ts), req)
    _any_matches("base64", _mac("sha256", secret, ts.encode(), req.body), [value])


def _box(secret: bytes, req: _Request) -> None:
    """Base64 HMAC-SHA256 of ``body + timestamp``, once per key (primary,
    secondary: key rotation); the secret may be either key."""
    primary = req.header("box-signature-primary", required=False)
    secondary = req.header("box-signature-secondary", required=False)
    ts = req.need("box-delivery-timestamp")
    if primary is None and secondary is None:
        raise _Failed("missing header box-signature-primary")
    for header, expected in (("box-signature-version", "1"),
                             ("box-signature-algorithm", "HmacSHA256")):  # fmt: skip
        if req.need(header) != expected:
            raise _Failed(f"malformed header {header}")
    _within_tolerance(_rfc3339(ts), req)
    sigs = [sig for sig in (primary, secondary) if sig is not None]
    _any_matches("base64", _mac("sha256", secret, req.body, ts.encode()), sigs)


def _microsoft_teams(secret: bytes, req: _Request) -> None:
    """``Authorization: HMAC <base64>``, keyed by the base64-decoded token."""
    key = _b64decode(_text_secret(secret))
    if key is None:
        raise ValueError("the Teams security token is base64")
    value = req.need("authorization")
    if not value.startswith("HMAC "):
        raise _Failed("malformed header authorization")
    _any_matches("base64", _mac("sha256", key, req.body), [value[5:]])


def _contentful(secret: bytes, req: _Request) -> None:
    """Contentful (node-apps-toolkit ``verifyRequest``): hex HMAC-SHA256 of
    ``method \n path \n k:v;k:v \n body`` over the headers named in
    ``x-contentful-signed-headers`` (sorted), with the timestamp and the
    signed-header list as the toolkit re-derives them."""
    ts_name, signed_name = "x-contentful-timestamp", "x-contentful-signed-headers"
    url = _url("contentful", req)
    value = req.need("x-contentful-signature")
    ts = req.need(ts_name)
    signed = req.need(signed_name)
    _fresh(ts, req, millis=True)
    names = sorted({
        n for n in signed.split(",")
        if n.isascii() and n == n.lower() and n not in (ts_name, signed_name)
    })  # fmt: skip
    picked = [(n, v) for n in names if (v := req.header(n, required=False)) is not None]
    picked += [(ts_name, str(int(ts))), (signed_name, "")]
    picked.sort(key=lambda item: item[0])
    listed = ",".join(n for n, _ in picked)
    joined = ";".join(f"{n}:{listed if n == signed_name else v}" for n, v in picked)
    path = _contentful_path(_split_url(url)[1])
    canonical = "\n".join((req.method, path, joined)).encode() + b"\n"
    _any_matches("hex", _mac("sha256", secret, canonical, req.body), [value])


def _split_url(url: str) -> tuple[str, str]:
    """(``scheme://authority``, path and query without the fragment)."""
    url = url.split("#", 1)[0]
    scheme_end = url.find("://")
    if scheme_end < 0:
        return "", url
    start = scheme_end + 3
    end = next((i for i in range(start, len(url)) if url[i] in "/?"), len(url))
    return url[:end], url[end:]


_ALNUM = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def _percent_encode(text: str, keep: bytes) -> str:
    """JavaScript's ``encodeURI``/``encodeURIComponent`` (they differ in `keep`)."""
    allowed = _ALNUM | frozenset(keep)
    return "".join(chr(b) if b in allowed else f"%{b:02X}" for b in text.encode())


def _contentful_path(path: str) -> str:
    """Contentful's ``getNormalizedEncodedURI`` (JavaScript ``split('?')``:
    text after a second ``?`` is dropped)."""
    pieces = path.split("?")
    joined = pieces[0]
    search = pieces[1] if len(pieces) > 1 else ""
    if search:
        joined += "?" + _percent_encode(search, b"-_.!~*'()")
    return _percent_encode(joined, b"-_.!~*'();/?:@&=+$,#")


def _docusign(secret: bytes, req: _Request) -> None:
    """DocuSign Connect: base64 HMAC-SHA256 of the body in one
    ``X-DocuSign-Signature-<n>`` header per active key; any may match."""
    prefix = "x-docusign-signature-"
    names: list[str] = []
    for key, _ in req.headers:
        lower = key.lower() if key.isascii() else ""
        digits = lower[len(prefix) :] if lower.startswith(prefix) else ""
        if digits.isascii() and digits.isdigit() and lower not in names:
            names.append(lower)
    if not names:
        raise _Failed("missing header x-docusign-signature-1")
    sigs = [req.need(name) for name in names]
    _any_matches("base64", _mac("sha256", secret, req.body), sigs)


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n",
                 "\f": "\\f", "\r": "\\r"}  # fmt: skip


def _json_string(text: str) -> str:
    """A string literal as JavaScript's ``JSON.stringify`` writes it."""
    out = []
    for c in text:
        escaped = _JSON_ESCAPES.get(c)
        if escaped is None and ord(c) < 0x20:
            escaped = f"\\u{ord(c):04x}"
        out.append(c if escaped is None else escaped)
    return '"' + "".join(out) + '"'


def _hygraph(secret: bytes, req: _Request) -> None:
    """Hygraph (``@hygraph/utils``): ``gcms-signature: sign=<b64>, env=<name>,
    t=<ms>``; the MAC covers ``JSON.stringify({Body, EnvironmentName, TimeStamp})``."""
    header = "gcms-signature"
    parts = req.need(header).split(", ")
    fields = [p.removeprefix(k) if p.startswith(k) else None
              for p, k in zip(parts, ("sign=", "env=", "t="), strict=False)]  # fmt: skip
    if len(parts) != 3 or None in fields:
        raise _Failed(f"malformed header {header}")
    sign, env, t = (f or "" for f in fields)
    _fresh(t, req, millis=True)
    try:
        body = req.body.decode()
    except UnicodeDecodeError:
        raise _Failed("malformed body") from None
    document = (
        f'{{"Body":{_json_string(body)},"EnvironmentName":{_json_string(env)},'
        f'"TimeStamp":{int(t)}}}'
    )
    _any_matches("base64", _mac("sha256", secret, document.encode()), [sign])


def _mandrill(secret: bytes, req: _Request) -> None:
    """Mandrill: base64 HMAC-SHA1 of the URL and each form parameter's name
    and value, sorted by name (stable)."""
    url = _url("mailchimp", req)
    value = req.need("x-mandrill-signature")
    params: list[tuple[str, str]] = []
    if _is_form(req.header("content-type", required=False)):
        params = sorted(_form(req.body), key=lambda kv: kv[0])
    signed = url + "".join(k + v for k, v in params)
    _any_matches("base64", _mac("sha1", secret, signed.encode()), [value])


def _orb(secret: bytes, req: _Request) -> None:
    """Orb: space-separated ``v1=<hex>``, HMAC-SHA256 of ``v1:{ts}:{body}``,
    ISO 8601 timestamp (UTC without an offset)."""
    header = "x-orb-signature"
    value = req.need(header)
    ts = req.need("x-orb-timestamp")
    sigs = [item[3:] for item in value.split(" ") if item.startswith("v1=") and "=" not in item[3:]]
    if not sigs:
        raise _Failed(f"malformed header {header}")
    _within_tolerance(_rfc3339(ts, naive_is_utc=True), req)
    _any_matches("hex", _mac("sha256", secret, b"v1:", ts.encode(), b":", req.body), sigs)


def _plivo(secret: bytes, req: _Request) -> None:
    """Plivo V3 (SDKs' ``validate_v3_signature``): URL without query, ``?``
    and the sorted query ``k=v&...``, then for a POST with parameters ``.``
    and each sorted ``name value``, then ``.nonce``; base64 HMAC-SHA256."""
    url = _url("plivo", req)
    value = req.need("x-plivo-signature-v3")
    nonce = req.need("x-plivo-signature-v3-nonce")
    base, _, query = url.split("#", 1)[0].partition("?")
    query_text = "&".join(f"{k}={v}" for k, v in sorted(_form(query.encode())))
    post: list[tuple[str, str]] = []
    if req.method.upper() != "GET" and _is_form(req.header("content-type", required=False)):
        post = sorted(_form(req.body))
    signed = base
    if query_text or post:
        signed += "?" + query_text
    if query_text and post:
        signed += "."
    signed += "".join(k + v for k, v in post) + "." + nonce
    sigs = [s.strip(" \t") for s in value.split(",")]
    _any_matches("base64", _mac("sha256", secret, signed.encode()), sigs)


def _basic_auth(secret: bytes, req: _Request) -> None:
    """HTTP Basic credentials; the secret is ``username::password`` (VMware
    Workspace ONE, as the public integration guide writes it)."""
    user, sep, password = _text_secret(secret).partition("::")
    if not sep:
        raise ValueError("the vmware secret is 'username::password'")
    value = req.need("authorization")
    scheme, sep, credentials = value.partition(" ")
    if not sep or not (scheme.isascii() and scheme.lower() == "basic"):
        raise _Failed("malformed header authorization")
    expected = base64.b64encode(f"{user}:{password}".encode()).decode()
    if not hmac.compare_digest(credentials.strip(" \t").encode(), expected.encode()):
        raise _Failed("token mismatch")


# --- configurable schemes ---------------------------------------------------------------

_GENERIC_CHOICES = {"algorithm": ("sha1", "sha256", "sha512"), "encoding": ("hex", "base64")}


def _bad_option(provider: str, key: str, value: str) -> ValueError:
    return ValueError(f"provider {provider!r}: invalid option {key}={value!r}")


def _generic(secret: bytes, req: _Request, options: Mapping[str, str]) -> None:
    """HMAC of the raw body; options ``header`` (required), ``algorithm``
    (sha1/sha256/sha512, default sha256), ``encoding`` (hex/base64, default
    hex), ``prefix`` (default none)."""
    config: dict[str, Any] = {"algorithm": "sha256", "encoding": "hex", "prefix": ""}
    for key, value in options.items():
        if key == "header" and value:
            config["header"] = value.lower()
        elif key == "prefix" or value in _GENERIC_CHOICES.get(key, ()):
            config[key] = value
        else:
            raise _bad_option("generic", key, value)
    if "header" not in config:
        raise ValueError("provider 'generic' needs the option header")
    _body(
        secret, req, header=config["header"], alg=config["algorithm"],
        enc=config["encoding"], prefix=config["prefix"],
    )  # fmt: skip


def _okta(secret: bytes, req: _Request, options: Mapping[str, str]) -> None:
    """Okta event hooks send a configured secret in a configured header
    (default ``Authorization``); options ``header``."""
    header = "authorization"
    for key, value in options.items():
        if key != "header" or not value:
            raise _bad_option("okta", key, value)
        header = value.lower()
    _token(secret, req, header=header)


# --- the table ----------------------------------------------------------------------

Scheme = Callable[[bytes, _Request], None]


def _hub(
    header: str = "x-hub-signature-256", alg: Alg = "sha256", prefix: str = "sha256="
) -> Scheme:
    return partial(_body, header=header, alg=alg, enc="hex", prefix=prefix)


def _hex(header: str, alg: Alg = "sha256") -> Scheme:
    return partial(_body, header=header, alg=alg, enc="hex")


def _b64(header: str, prefix: str = "") -> Scheme:
    return partial(_body, header=header, alg="sha256", enc="base64", prefix=prefix)


def _hex_list(header: str, prefix: str) -> Scheme:
    return partial(_body, header=header, alg="sha256", enc="hex", prefix=prefix, list_=True)


def _v0(header: str, prefix: str, ts_header: str, lead: str) -> Scheme:
    return partial(
        _timestamped, header=header, prefix=prefix, ts_header=ts_header, lead=lead, sep=":"
    )


def _kv(header: str, ts_key: str = "t", sig_key: str = "v1") -> Scheme:
    return partial(_key_value, header=header, ts_key=ts_key, sig_key=sig_key)


# provider id -> (scheme, documented tolerance in seconds or None)
_PROVIDERS: dict[str, tuple[Scheme, float | None]] = {
    "aftership": (_b64("aftership-hmac-sha256"), None),
    "airship": (
        partial(
            _timestamped,
            header="x-ua-signature",
            prefix="",
            ts_header="x-ua-timestamp",
            lead="",
            sep=":",
        ),
        None,
    ),
    "alchemy": (_hex("x-alchemy-signature"), None),
    "autodesk": (_hub("x-adsk-signature", "sha1", "sha1hash="), None),
    "bitbucket": (_hub("x-hub-signature"), None),
    "bolt": (_b64("x-bolt-hmac-sha256"), None),
    "box": (_box, 600.0),
    "brex": (_standard_webhooks, 300.0),
    "buildkite": (_kv("x-buildkite-signature", "timestamp", "signature"), None),
    "calendly": (_kv("calendly-webhook-signature"), 180.0),
    "castle": (_b64("x-castle-signature"), None),
    "chargify": (_hex("x-chargify-webhook-signature-hmac-sha-256"), None),
    "circleci": (_hex_list("circleci-signature", "v1="), None),
    "clearbit": (_hub("x-request-signature", "sha1", "sha1="), None),
    "clerk": (_standard_webhooks, 300.0),
    "coinbase": (_hex("x-cc-webhook-signature"), None),
    "contentful": (_contentful, 30.0),
    "docusign": (_docusign, None),
    "dropbox": (_hex("x-dropbox-signature"), None),
    "facebook_graph_api": (_hub(), None),
    "facebook_messenger": (_hub(), None),
    "frameio": (_v0("x-frameio-signature", "v0=", "x-frameio-request-timestamp", "v0:"), 300.0),
    "github": (_hub(), None),
    "gitlab": (partial(_token, header="x-gitlab-token"), None),
    "go1": (_kv("go1-signature"), None),
    "graphcms": (_hygraph, None),
    "heroku": (_b64("heroku-webhook-hmac-sha256"), None),
    "hostedhooks": (_kv("hostedhooks-signature", "t", "s"), None),
    "hubspot": (_hubspot, 300.0),
    "instagram": (_hub(), None),
    "intercom": (_hub("x-hub-signature", "sha1", "sha1="), None),
    "jira": (_hub("x-hub-signature"), None),
    "launch_darkly": (_hex("x-ld-signature"), None),
    "linear": (_hex("linear-signature"), None),
    "mailchimp": (_mandrill, None),
    "mailgun": (_mailgun, None),
    "microsoft_teams": (_microsoft_teams, None),
    "modern_treasury": (_hex("x-signature"), None),
    "mongodb": (partial(_body, header="x-mms-signature", alg="sha1", enc="base64"), None),
    "mux": (_kv("mux-signature"), 300.0),
    "orb": (_orb, 300.0),
    "orbit": (partial(_token, header="x-orbit-signature"), None),
    "pagerduty": (_hex_list("x-pagerduty-signature", "v1="), None),
    "pinwheel": (_v0("x-pinwheel-signature", "v2=", "x-timestamp", "v2:"), None),
    "plivo": (_plivo, None),
    "pusher": (_hex("x-pusher-signature"), None),
    "segment": (_hex("x-signature", "sha1"), None),
    "sendgrid": (_sendgrid, None),
    "sentry": (_hex("sentry-hook-signature"), None),
    "shopify": (_b64("x-shopify-hmac-sha256"), None),
    "signal_sciences": (_hex("x-sigsci-signature"), None),
    "slack": (_v0("x-slack-signature", "v0=", "x-slack-request-timestamp", "v0:"), 300.0),
    "sonatype": (_hex("x-nexus-webhook-signature", "sha1"), None),
    "square": (_square, None),
    "stripe": (_kv("stripe-signature"), 300.0),
    "svix": (_standard_webhooks, 300.0),
    "terraform": (_hex("x-tfe-notification-signature", "sha512"), None),
    "tiktok": (_kv("tiktok-signature", "t", "s"), None),
    "trendmicro_conformity": (_hex("x-conformity-signature"), None),
    "twilio": (_twilio, None),
    "twitter": (_b64("x-twitter-webhooks-signature", "sha256="), None),
    "typeform": (_b64("typeform-signature", "sha256="), None),
    "vmware": (_basic_auth, None),
    "webex": (_hex("x-spark-signature", "sha1"), None),
    "whatsapp": (_hub(), None),
    "worldline": (_b64("x-gcs-signature"), None),
    "xero": (_b64("x-xero-signature"), None),
    "zendesk": (_zendesk, None),
    "zoom": (_v0("x-zm-signature", "v0=", "x-zm-request-timestamp", "v0:"), None),
}
# Providers configured by `options` (the others take none).
_CONFIGURABLE: dict[str, Callable[[bytes, _Request, Mapping[str, str]], None]] = {
    "generic": _generic,
    "okta": _okta,
}

PROVIDERS: frozenset[str] = frozenset(_PROVIDERS) | frozenset(_CONFIGURABLE)
DEFAULT_TOLERANCE_S: Mapping[str, float] = MappingProxyType(
    {name: (_PROVIDERS.get(name, (None, None))[1] or DEFAULT_TOLERANCE) for name in PROVIDERS}
)


# --- API ---------------------------------------------------------------------------


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("latin-1")
    raise TypeError("header names and values must be str or bytes")


def _pairs(
    items: Mapping[str, str] | Iterable[tuple[HeaderText, HeaderText]],
) -> list[tuple[str, str]]:
    # Anything with items() counts as a mapping (also multidicts and
    # email.message.Message, whose items() repeat names), as in the binding.
    source = cast(Mapping[str, str], items).items() if hasattr(items, "items") else items
    return [(_text(name), _text(value)) for name, value in source]


def explain_webhook(
    provider: str,
    secret: str | bytes,
    headers: Mapping[str, str] | Iterable[tuple[HeaderText, HeaderText]],
    body: bytes,
    *,
    url: str | None = None,
    now: float | None = None,
    tolerance_s: float = 300.0,
    options: Mapping[str, str] | None = None,
    method: str = "POST",
) -> tuple[bool, str]:
    """The verdict and a short reason (``"ok"``, ``"stale timestamp"``…)."""
    if isinstance(secret, str):
        secret = secret.encode()
    elif not isinstance(secret, bytes):
        raise TypeError("secret must be str or bytes")
    if not isinstance(body, bytes):
        raise TypeError("body must be bytes")
    req = _Request(
        _pairs(headers), body, url, method,
        time.time() if now is None else float(now), float(tolerance_s),
    )  # fmt: skip
    options = dict(options or {})
    if provider not in PROVIDERS:
        raise ValueError(f"unknown webhook provider {provider!r}")
    if not secret:
        raise ValueError("the webhook secret must not be empty")
    try:
        if provider in _CONFIGURABLE:
            _CONFIGURABLE[provider](secret, req, options)
        elif options:
            raise ValueError(f"provider {provider!r} takes no options")
        else:
            _PROVIDERS[provider][0](secret, req)
    except _Failed as failed:
        return False, str(failed.args[0])
    return True, "ok"


def verify_webhook(
    provider: str,
    secret: str | bytes,
    headers: Mapping[str, str] | Iterable[tuple[HeaderText, HeaderText]],
    body: bytes,
    *,
    url: str | None = None,
    now: float | None = None,
    tolerance_s: float = 300.0,
    options: Mapping[str, str] | None = None,
    method: str = "POST",
) -> bool:
    """True when `body` carries a valid signature of `provider` by `secret`."""
    return explain_webhook(
        provider, secret, headers, body,
        url=url, now=now, tolerance_s=tolerance_s, options=options, method=method,
    )[0]  # fmt: skip
