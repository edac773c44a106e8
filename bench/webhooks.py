"""Webhook verification speed on this machine.

1. Verifications per second for 1 KiB and 64 KiB bodies: the Rust module
   against the pure-Python twin (stdlib `hmac`, i.e. OpenSSL's hashes).
2. Throughput of a 64 KiB verification (per CPU second, as `openssl speed`
   counts) against `openssl speed -evp <hash>` measured in the same run,
   with and without OpenSSL's SHA-NI path (``OPENSSL_ia32cap`` masks the
   CPU's SHA extension). Native ≈ the SHA-NI
   figure and well above the masked one shows the Rust hashes use SHA-NI.
   Goal: 64 KiB HMAC-SHA256 verification ≥ 0.9× openssl's sha256.

``python -m bench webhooks [--openssl-seconds N]``
"""

from __future__ import annotations

import argparse
import base64
import hmac
import os
import re
import shutil
import ssl
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from edgeward.bench.table import Table
from edgeward.bench.timing import median_ns_per_call
from edgeward.webhooks import reference

SECRET = "bench-secret-0123456789"
TS = 1_700_000_000
GOAL = 0.9
# CPUID.7.EBX bit 29 (SHA extensions) cleared in OpenSSL's capability vector.
NO_SHA_NI = ":~0x20000000"


def _native() -> ModuleType | None:
    try:
        import edgeward_native
    except ImportError:
        return None
    return edgeward_native


def _mac(alg: str, *parts: bytes) -> bytes:
    return hmac.new(SECRET.encode(), b"".join(parts), alg).digest()


# provider -> (hash openssl measures, sign(body) -> headers)
CASES: dict[str, tuple[str, Callable[[bytes], dict[str, str]]]] = {
    "github": ("sha256", lambda b: {"X-Hub-Signature-256": "sha256=" + _mac("sha256", b).hex()}),
    "stripe": (
        "sha256",
        lambda b: {
            "Stripe-Signature": f"t={TS},v1={_mac('sha256', str(TS).encode(), b'.', b).hex()}"
        },
    ),
    "shopify": (
        "sha256",
        lambda b: {"X-Shopify-Hmac-Sha256": base64.b64encode(_mac("sha256", b)).decode()},
    ),
    "segment": ("sha1", lambda b: {"X-Signature": _mac("sha1", b).hex()}),
    "terraform": ("sha512", lambda b: {"X-TFE-Notification-Signature": _mac("sha512", b).hex()}),
}


def _calls_per_s(backend: ModuleType, provider: str, headers: dict[str, str], body: bytes) -> float:
    def call() -> object:
        return backend.verify_webhook(provider, SECRET, headers, body, now=TS)

    assert call(), f"{backend.__name__} rejected the {provider} bench delivery"
    number = max(20, min(20_000, 20_000_000 // max(len(body), 1)))
    return 1e9 / median_ns_per_call(call, number=number)


def _cpu_mb_s(backend: ModuleType, provider: str, headers: dict[str, str], body: bytes) -> float:
    """MB/s over process CPU time, the divisor `openssl speed` uses too, so
    other load on this shared machine skews neither side of the ratio."""
    samples = []
    for _ in range(7):
        calls, start = 0, time.process_time_ns()
        while (spent := time.process_time_ns() - start) < 200_000_000:
            for _ in range(50):
                backend.verify_webhook(provider, SECRET, headers, body, now=TS)
            calls += 50
        samples.append(calls * len(body) * 1e3 / spent)
    return statistics.median(samples)


def openssl_mb_s(digest: str, size: int, seconds: int, *, sha_ni: bool = True) -> float | None:
    """`openssl speed -evp <digest>` for one block size, in MB/s (10^6 B/s)."""
    if shutil.which("openssl") is None:
        return None
    env = dict(os.environ)
    if not sha_ni:
        env["OPENSSL_ia32cap"] = NO_SHA_NI
    cmd = ["openssl", "speed", "-evp", digest, "-bytes", str(size), "-seconds", str(seconds)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    # The last line: "<digest>   1680634.31k" (thousands of bytes per second).
    match = re.search(rf"^{digest}\s+([\d.]+)k\s*$", out, re.MULTILINE)
    return float(match.group(1)) / 1000 if match else None


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench webhooks", description=__doc__)
    parser.add_argument("--openssl-seconds", type=int, default=2)
    args = parser.parse_args(argv)
    native = _native()
    if native is None:
        print("edgeward_native is not built: only the pure-Python twin can be measured")

    rate = Table(
        "webhook verifications per second (median of 7)",
        ["provider", "body", "native /s", "reference /s", "native / reference"],
    )
    throughput = Table(
        "64 KiB verification throughput vs openssl speed -evp (MB/s of CPU time, same run)",
        ["provider", "hash", "native", "openssl", "openssl no SHA-NI", "native / openssl", "goal"],
    )
    size = 64 * 1024
    for provider, (digest, sign) in CASES.items():
        for body_size in (1024, size):
            body = bytes(range(256)) * (body_size // 256)
            headers = sign(body)
            ref = _calls_per_s(reference, provider, headers, body)
            nat = _calls_per_s(native, provider, headers, body) if native else float("nan")
            rate.add(provider, f"{body_size // 1024} KiB", nat, ref, nat / ref)
            if body_size == size and native is not None:
                mb_s = _cpu_mb_s(native, provider, headers, body)
                fast = openssl_mb_s(digest, size, args.openssl_seconds)
                plain = openssl_mb_s(digest, size, args.openssl_seconds, sha_ni=False)
                ratio = mb_s / fast if fast else float("nan")
                goal = "-"  # the goal is set for sha256; sha1/sha512 are shown for reference
                if digest == "sha256":
                    goal = f">= {GOAL}" + (" ok" if ratio >= GOAL else " MISSED")
                throughput.add(provider, digest, mb_s, fast, plain, ratio, goal)
    rate.print()
    print()
    throughput.print()
    cpuinfo = Path("/proc/cpuinfo")
    sha_ni = cpuinfo.exists() and "sha_ni" in cpuinfo.read_text()
    print(f"\nCPU advertises sha_ni: {sha_ni}; Python's hashlib uses {ssl.OPENSSL_VERSION}")
