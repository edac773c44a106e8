"""The layering rules of docs/architecture.md, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "edgeward"

# Packages whose code is sans-IO: fed bytes/events, never an event loop.
SANS_IO = (
    "hooks",
    "hookdriver",
    "errors",
    "errorbody",
    "urlpath",
    "document",
    "http1",
    "http2",
    "expr",
    "ipnet",
    "webhooks",
    "policy",
    "tunnel",
    "identity",
    "waf",
    "agents",
    "ipintel",
    "ja4",
    "redaction",
    "inspection",
)
# The trio drivers that live inside a sans-IO package (and nothing there imports them).
TRIO_DRIVERS = {"edgeward.tunnel.trio_session"}
# Packages that do blocking I/O (the state store's database) without trio;
# trio code reaches them through the one adapter module named here.
TRIO_FREE = ("store", "authtokens", "events", "control")
TRIO_ADAPTERS = ("store/trio_adapter.py", "events/service.py")
# Libraries only one layer may import: SQL lives in the store; the ASGI
# framework and its server, in the admin API.
OWNED = {
    "sqlalchemy": "store",
    "alembic": "store",
    "starlette": "admin",
    "hypercorn": "admin",
}
# Modules let past one of their layer's FORBIDDEN prefixes, and why.
ALLOWED = {
    # The console's policy editor runs `policy check` / `policy test` offline
    # on pasted text (the CLI's code, `policy.cli`): it compiles a policy and
    # never reaches the running edge, which the admin layer still sees only
    # through `admin.dataplane`.
    "admin/console/policy_editor.py": ("edgeward.policy",),
}
# What each layer must not import.
FORBIDDEN = {
    # Persistence below the domain: rows in, rows out; no meaning, no data plane.
    "store": (
        "edgeward.admin",
        "edgeward.authtokens",
        "edgeward.config",
        "edgeward.policy",
        "edgeward.proxy",
        "edgeward.http1",
        "edgeward.http2",
    ),
    "authtokens": (
        "edgeward.policy",
        "edgeward.proxy",
        "edgeward.http1",
        "edgeward.http2",
        "edgeward.admin",
    ),
    # The flow of an exchange's hooks, run by the proxy and by `policy test`:
    # the seam's level, below both.
    "hookdriver": (
        "edgeward.proxy",
        "edgeward.policy",
        "edgeward.config",
        "edgeward.http1",
        "edgeward.http2",
    ),
    # The YAML/JSON loader of both the edge config and policies: below both.
    "document": ("edgeward.config", "edgeward.policy", "edgeward.proxy", "edgeward.hooks"),
    "policy": ("edgeward.proxy", "edgeward.http1", "edgeward.http2", "edgeward.config"),
    "expr": ("edgeward.policy", "edgeward.proxy"),
    # The login flow: below the policy engine, which runs it for oauth/oidc.
    "identity": ("edgeward.policy", "edgeward.proxy", "edgeward.config", "edgeward.http1"),
    "http1": ("edgeward.policy", "edgeward.expr"),
    "http2": ("edgeward.policy", "edgeward.expr"),
    # The tunnel protocol sits beside http1/http2: the edge and the agent build on it.
    # The edge's book of agents: decisions only; the proxy drives it.
    "agents": (
        "edgeward.proxy",
        "edgeward.policy",
        "edgeward.store",
        "edgeward.http1",
        "edgeward.http2",
        "edgeward.agent",
        "edgeward.cli",
    ),
    # The agent: the tunnel's client role and bytes; none of the edge's
    # decisions (of the proxy only its socket transport, see below).
    "agent": (
        "edgeward.agents",
        "edgeward.policy",
        "edgeward.store",
        "edgeward.authtokens",
        "edgeward.config",
        "edgeward.identity",
    ),
    "tunnel": (
        "edgeward.proxy",
        "edgeward.policy",
        "edgeward.config",
        "edgeward.http1",
        "edgeward.http2",
        "edgeward.expr",
        "edgeward.cli",
    ),
    # The WAF engine binding: below the policy layer, blocking calls only.
    "waf": (
        "edgeward.policy",
        "edgeward.proxy",
        "edgeward.config",
        "edgeward.http1",
        "edgeward.http2",
        "edgeward.expr",
        "edgeward.native",
    ),
    # IP intelligence (geo/ASN databases, category lists): data below the
    # config and the policy, which hand it on.
    "ipintel": (
        "edgeward.policy",
        "edgeward.proxy",
        "edgeward.config",
        "edgeward.http1",
        "edgeward.http2",
        "edgeward.expr",
    ),
    # The admin API (control plane): above the store, authtokens and the agents'
    # registry; it sees the running edge only through `admin.dataplane`, which
    # the proxy fills in, so it never imports the proxy, the policy engine or
    # the protocols. (Its SSO login reuses `edgeward.identity`'s sans-IO OIDC
    # pieces: discovery, keys, ID-token validation.)
    "admin": (
        "edgeward.proxy",
        "edgeward.policy",
        "edgeward.http1",
        "edgeward.http2",
        "edgeward.tunnel.trio_session",
        "edgeward.agent",
    ),
    # The event bus and its destinations: below every producer (admin API,
    # agents, policy engine), which publish to it; threads, no trio but its
    # service module.
    "events": (
        "edgeward.proxy",
        "edgeward.policy",
        "edgeward.admin",
        "edgeward.agents",
        "edgeward.agent",
        "edgeward.http1",
        "edgeward.http2",
        "edgeward.identity",
    ),
    # The control plane's meaning (restrictions, snapshot): below the admin API
    # and the proxy, which both apply it.
    "control": (
        "edgeward.proxy",
        "edgeward.admin",
        "edgeward.policy",
        "edgeward.http1",
        "edgeward.http2",
        "edgeward.agents",
    ),
    # The admin API's command-line client: the standard library only.
    "apiclient": ("edgeward.store", "edgeward.admin", "edgeward.authtokens", "edgeward.proxy"),
    # bottom-row helpers of the proxy and the config: plain functions on bytes
    "ja4": ("edgeward",),  # the twin of native.ja4_fingerprint
    "urlpath": ("edgeward",),
    # redaction of captured traffic, and the inspector's settings: below the
    # proxy and the admin API, which both use them
    "redaction": ("edgeward",),
    "inspection": ("edgeward.proxy", "edgeward.admin", "edgeward.store", "edgeward.control"),
    "errorbody": ("edgeward",),
}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py*") if p.suffix in (".py", ".pyx"))


def imported(path: Path) -> set[str]:
    if path.suffix == ".pyx":  # Cython syntax: a line-based scan is enough here
        names = set()
        for line in path.read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in ("import", "from", "cimport"):
                names.add(words[1])
        return names
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)  # and what it names, which may be a module
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def layer(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py").removesuffix(".pyx")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_the_admin_api_loads_only_when_configured() -> None:
    """`edgeward serve` imports Starlette and hypercorn only with `api:` in
    edge.yml (the proxy imports `edgeward.admin.service` lazily)."""
    import subprocess
    import sys

    code = (
        "import sys, edgeward.proxy.server, edgeward.cli; edgeward.cli.build_parser();"
        " print(sorted(m for m in ('starlette', 'hypercorn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layering(path: Path) -> None:
    names = imported(path)
    here = layer(path)
    if here != "native":
        assert not any(_matches(n, "edgeward_native") for n in names), (
            "only edgeward.native imports the compiled module"
        )
    if here in SANS_IO and module_name(path) not in TRIO_DRIVERS:
        assert not any(_matches(n, "trio") for n in names), f"{here} is sans-IO: no trio"
        for driver in TRIO_DRIVERS:
            assert not any(_matches(n, driver) for n in names), f"{here} is sans-IO: no {driver}"
    if here in TRIO_FREE and str(path.relative_to(PACKAGE)) not in TRIO_ADAPTERS:
        assert not any(_matches(n, "trio") for n in names), (
            f"{here} runs in worker threads: trio only in {TRIO_ADAPTERS}"
        )
    for library, owner in OWNED.items():
        if here != owner:
            assert not any(_matches(n, library) for n in names), f"only {owner} imports {library}"
    if here == "agent":  # of the proxy, only its socket transport
        proxy = [n for n in names if _matches(n, "edgeward.proxy")]
        assert all(_matches(n, "edgeward.proxy.transport") for n in proxy), proxy
    allowed = ALLOWED.get(str(path.relative_to(PACKAGE)), ())
    for prefix in FORBIDDEN.get(here, ()):
        if prefix in allowed:
            continue
        assert not any(_matches(n, prefix) for n in names), f"{here} must not import {prefix}"
