"""What basic-auth, jwt-validation, rate-limit and compress-response cost per
request on the sans-IO engine, against a baseline measured in the same run
(an empty policy: the exchange alone); and compress-response's streaming
throughput.

    python -m bench action_costs [--number N]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
from collections.abc import Callable
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from edgeward import native
from edgeward.bench.table import Table
from edgeward.bench.timing import median_ns_per_call, median_s
from edgeward.document import parse_document
from edgeward.hookdriver import drive_sync as drive
from edgeward.hooks import (
    ConnectionInfo,
    Effect,
    EffectResult,
    EndpointInfo,
    FetchResult,
    RequestHead,
    ResponseHead,
)
from edgeward.policy import CompiledPolicy, compile_policy
from edgeward.policy.actions.compress_response import compressor

JKU = "https://idp.bench/jwks"
ISSUER = "https://idp.bench/"
CONN = ConnectionInfo("c", "l", "192.0.2.1", 5000, "127.0.0.1", 443, 0.0)
ENDPOINT = EndpointInfo("app", "https://app.bench", "app.bench", 443, "https", "ep", "http://u")


def runner(
    policy_text: str, headers: list[tuple[bytes, bytes]], fetch: FetchResult | None = None
) -> Callable[[], object]:
    policy: CompiledPolicy = compile_policy(
        parse_document(policy_text, "bench.yml"), ip_policies={}, clock=time.time
    )
    head = RequestHead(b"GET", b"/api/orders", b"app.bench", b"https", headers, b"1.1")
    response = ResponseHead(200, [(b"content-type", b"application/json")])

    def perform(_effect: Effect) -> EffectResult:
        return fetch  # the JWKS, whatever is asked

    def one() -> object:
        exchange = policy.begin(CONN, ENDPOINT, head, "r")
        drive(exchange.on_http_request(head), perform)
        return drive(exchange.on_http_response(response), perform)

    one()  # warm: JWKS fetched and cached, buckets created
    return one


def jwt_policy(alg: str, keys: str) -> str:
    return f"""
on_http_request:
  - actions:
      - type: jwt-validation
        config:
          issuer: {{allow_list: [{{value: "{ISSUER}"}}]}}
          audience: {{allow_list: [{{value: api}}]}}
          http: {{tokens: [{{type: jwt, method: header, name: Authorization, prefix: "Bearer "}}]}}
          jws: {{allowed_algorithms: [{alg}], keys: {keys}}}
"""


def jwt_case(alg: str) -> Callable[[], object]:
    key: Any
    if alg == "RS256":
        key = RSAKey.generate_key(2048, parameters={"kid": "k"})
    elif alg == "ES256":
        key = ECKey.generate_key("P-256", parameters={"kid": "k"})
    elif alg == "EdDSA":
        key = OKPKey.generate_key("Ed25519", parameters={"kid": "k"})
    else:
        key = OctKey.import_key(os.urandom(32), parameters={"kid": "k"})
    claims = {"iss": ISSUER, "aud": "api", "sub": "alice", "exp": int(time.time()) + 3600}
    token = jwt.encode({"alg": alg, "kid": "k"}, claims, key, algorithms=[alg])
    headers = [(b"authorization", b"Bearer " + token.encode())]
    if alg == "HS256":
        keys = f"{{sources: {{jwks: [{json.dumps(key.as_dict(private=True))}]}}}}"
        return runner(jwt_policy(alg, keys), headers)
    body = json.dumps({"keys": [key.as_dict(private=False)]}).encode()
    fetch = FetchResult(200, (("cache-control", "max-age=86400"),), body)
    return runner(jwt_policy(alg, f"{{sources: {{additional_jkus: ['{JKU}']}}}}"), headers, fetch)


def main(argv: list[str]) -> None:
    args = argparse.ArgumentParser(prog="python -m bench action_costs")
    args.add_argument("--number", type=int, default=2000, help="requests per sample")
    number = args.parse_args(argv).number

    creds = ", ".join(f'"user{i}:password-{i:04d}"' for i in range(10))
    basic = "Basic " + base64.b64encode(b"user9:password-0009").decode()
    cases: list[tuple[str, Callable[[], object]]] = [
        ("baseline: empty policy", runner("{}", [])),
        (
            "basic-auth, 10 credentials, valid",
            runner(
                f"on_http_request: [{{actions: [{{type: basic-auth, "
                f"config: {{credentials: [{creds}]}}}}]}}]",
                [(b"authorization", basic.encode())],
            ),
        ),
        (
            "rate-limit, conn.client_ip, capacity 2e9",
            runner(
                "on_http_request: [{actions: [{type: rate-limit, config: {name: r, "
                "algorithm: sliding_window, capacity: 2000000000, rate: 60s, "
                "bucket_key: [conn.client_ip]}}]}]",
                [],
            ),
        ),
        (
            "compress-response (negotiation, gzip chosen)",
            runner(
                "on_http_response: [{actions: [{type: compress-response}]}]",
                [(b"accept-encoding", b"gzip, deflate, br")],
            ),
        ),
        *(
            (f"jwt-validation {alg} (keys cached)", jwt_case(alg))
            for alg in ("RS256", "ES256", "EdDSA", "HS256")
        ),
    ]
    table = Table(
        f"policy action cost per request (sans-IO engine, {native.BACKEND} backend)",
        ["case", "µs/request", "× baseline"],
    )
    baseline = 0.0
    for name, fn in cases:
        ns = median_ns_per_call(fn, number=number if "jwt" not in name else max(number // 10, 50))
        baseline = baseline or ns
        table.add(name, ns / 1000, ns / baseline)
    table.print()

    rows = [{"id": i, "status": "shipped", "total": i * 7919 % 100_003} for i in range(250_000)]
    data = json.dumps(rows).encode()[: 16 * 1024 * 1024]  # varied, like a real listing
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    stream = Table(
        f"compress-response streaming ({len(data) >> 20} MiB of JSON, 64 KiB chunks)",
        ["coding", "MB/s", "ratio"],
    )
    for coding in ("gzip", "deflate", "br"):
        sizes: list[int] = []

        def compress(coding: str = coding, sizes: list[int] = sizes) -> None:
            f = compressor(coding)
            sizes.append(sum(len(f.feed(chunk)) for chunk in chunks) + len(f.finish()))

        seconds = median_s(compress, repeat=3)
        stream.add(coding, len(data) / seconds / 1e6, len(data) / sizes[-1])
    stream.print()
