"""Strict validation of an edge configuration file into `EdgeConfig`.

Every mistake is a `ConfigError` naming file, line and key: unknown keys,
wrong types, missing files, duplicate names and hostnames. Nothing is
guessed: a typo in a key is an error, not a silently ignored option.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from edgeward.config.model import (
    UPSTREAM_PROTOCOLS,
    AccessLog,
    AdminListener,
    AgentIngress,
    AgentTcp,
    ApiListener,
    Certificate,
    EdgeConfig,
    Endpoint,
    ForwardedTrust,
    IdentityConfig,
    IpPolicy,
    Limits,
    Listener,
    ListenerTls,
    Network,
    OutboundAllowList,
    PolicyFactory,
    PolicySource,
    Timeouts,
    Upstream,
    UpstreamProtocol,
    is_internal,
)
from edgeward.document import Document, Fields, PathKey, describe, kind_name, load_document
from edgeward.errors import ConfigError, EdgewardError
from edgeward.ipintel import EMPTY as NO_IP_INTELLIGENCE
from edgeward.ipintel import IpIntelligence, Sources
from edgeward.ipintel import load as load_ip_intelligence
from edgeward.secrets import Secrets, read_secrets
from edgeward.urlpath import ESCAPED_SLASH_ACTIONS

T = TypeVar("T")
_REQUIRED: Any = object()
_HOSTNAME = re.compile(
    r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
# An IP category name: dotted words of the public list (docs/policy.md).
_CATEGORY = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")


def load_config(path: str | Path, policy_factory: PolicyFactory | None = None) -> EdgeConfig:
    """Read and validate `path`. With `policy_factory`, every traffic policy
    is compiled too, so a bad policy fails the load like a bad key."""
    file = Path(path)
    doc = load_document(file, what="config file")
    return _Loader(doc, file.parent, policy_factory).config()


class _Section(Fields):
    """One mapping of the document: typed `take()`s, then `done()` rejects
    every key nobody took."""

    def __init__(self, loader: _Loader, path: PathKey, data: Any) -> None:
        super().__init__(data, path, loader.doc)
        self.loader = loader

    def has(self, key: str) -> bool:
        self.known.add(key)
        return key in self.data

    def missing(self, key: str, message: str | None = None) -> ConfigError:
        """The error for a required `key` that is absent: a mistyped key
        present in its place is reported first, at its own line."""
        return self.misspelt(key) or self.error(None, message or f"missing required key {key!r}")

    def take(self, key: str, kind: type[T], default: T = _REQUIRED, what: str | None = None) -> T:
        """The value of `key`, which must be a `kind` (`what` names it in
        the error: "a number of seconds")."""
        self.read.add(key)
        if key not in self.data or (self.data[key] is None and default is not _REQUIRED):
            if default is _REQUIRED:
                raise self.missing(key)
            return default
        value = self.data[key]
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok and kind is bool and isinstance(value, str):
            raise self.error(key, f"must be true or false, not {value!r} (YAML 1.2: that is text)")
        if not ok:
            got = f"{value!r}" if isinstance(value, str) and what else describe(value)
            raise self.error(key, f"must be {what or kind_name(kind)}, not {got}")
        return value  # type: ignore[no-any-return]

    def section(self, key: str) -> _Section:
        self.read.add(key)
        return _Section(self.loader, (*self.path, key), self.data.get(key) or {})

    def at(self, key: str) -> PathKey:
        return (*self.path, key)

    def done(self) -> None:
        self.check_unknown()


class _Loader:
    def __init__(self, doc: Document, base: Path, factory: PolicyFactory | None) -> None:
        self.doc = doc
        self.base = base
        self.factory = factory
        self.http_request = OutboundAllowList()
        self.owasp_crs_rules_dir: Path | None = None
        self.events: tuple[str, ...] | None = None
        self.identity: IdentityConfig | None = None
        self.secrets = Secrets()
        self.ip_intelligence: IpIntelligence = NO_IP_INTELLIGENCE

    def error(self, path: PathKey, message: str) -> ConfigError:
        return ConfigError(message, self.doc.locate(path))

    def config(self) -> EdgeConfig:
        top = _Section(self, (), self.doc.data if self.doc.data is not None else {})
        limits = self._fields(top.section("limits"), Limits)
        timeouts = self._fields(top.section("timeouts"), Timeouts)
        access_log = self._access_log(top)
        self.events = self._events(top)
        self.http_request = self._http_request(top.section("http_request"))
        self.owasp_crs_rules_dir = self._owasp_crs(top.section("owasp_crs"))
        top.read.add("secrets")
        self.secrets = read_secrets(self.doc, ("secrets",), top.data.get("secrets"), self.base)
        forwarded = self._forwarded(top.section("forwarded_headers"))
        self.ip_intelligence = self._ip_intelligence(top.section("ip_intelligence"))
        ip_policies = self._ip_policies(top.section("ip_policies"))
        state_dir = self._state_dir(top)
        store_url = self._store_url(top)
        identity_section = top.section("identity") if top.has("identity") else None
        listeners = self._list(top, "listeners", self._listener)
        if not listeners:
            raise top.missing("listeners", "at least one listener is required")
        names = self._unique(top, "listeners", [ln.name for ln in listeners], "listener name")
        if identity_section is not None:
            self.identity = self._identity(identity_section, names)
            # Listener policies were read before the section: give them the runtime too.
            listeners = [self._with_identity(ln) for ln in listeners]
        endpoints = self._list(top, "endpoints", lambda s: self._endpoint(s, names))
        self._unique(top, "endpoints", [e.name for e in endpoints], "endpoint name")
        self._unique_hostnames(top, endpoints)
        if self.identity is not None:
            auth = self._auth_host_endpoint(self.identity)
            for ep in endpoints:
                if ep.name == auth.name:
                    raise self.error(("identity",), f"{auth.name!r} is the auth host's name")
                if ep.hostname == auth.hostname and set(ep.listeners) & set(auth.listeners):
                    raise self.error(
                        ("identity", "auth_host"),
                        f"endpoint {ep.name!r} has the auth host's hostname: the auth host"
                        " is served by the edge itself",
                    )
            endpoints.append(auth)
        admin = self._admin(top, listeners)
        agents = self._agent_ingress(top, listeners, admin)
        api = self._api(top, listeners, admin, agents)
        top.done()
        if self.factory is not None:
            listeners = [self._compiled(ln, ip_policies) for ln in listeners]
            endpoints = [self._compiled(e, ip_policies) for e in endpoints]
            agents = self._compiled(agents, ip_policies) if agents is not None else None
        return EdgeConfig(
            file=self.doc.file,
            listeners=tuple(listeners),
            endpoints=tuple(endpoints),
            limits=limits,
            timeouts=timeouts,
            access_log=access_log,
            http_request=self.http_request,
            owasp_crs_rules_dir=self.owasp_crs_rules_dir,
            events=self.events,
            forwarded=forwarded,
            ip_policies=ip_policies,
            secrets=self.secrets,
            ip_intelligence=self.ip_intelligence,
            state_dir=state_dir,
            store_url=store_url,
            identity=self.identity,
            admin=admin,
            agent_ingress=agents,
            api=api,
            raw=self.doc.data,
        )

    # --- pieces -----------------------------------------------------------------

    def _fields(self, sec: _Section, cls: type[T]) -> T:
        """`limits` and `timeouts`: numbers, each reported in its unit."""
        defaults = cls()
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:  # type: ignore[attr-defined]
            default = getattr(defaults, name)
            unit = _unit(name, default)
            what = {"s": "a number of seconds", " bytes": "a number of bytes"}.get(unit)
            value = sec.take(name, type(default), default, what)
            if isinstance(value, float) and value <= 0:
                raise self.error(sec.at(name), f"must be more than 0{unit}, not {value:g}{unit}")
            if value < 0:
                raise self.error(sec.at(name), f"must be 0{unit} or more, not {value}{unit}")
            values[name] = value
        sec.done()
        return cls(**values)

    def _access_log(self, top: _Section) -> AccessLog:
        """true or stdout: standard output; false or off: none; else a
        file. YAML 1.1's other booleans (`yes`, `on`...) are text in YAML
        1.2: an error here, never a file named `yes`."""
        value = top.data.get("access_log", False)
        top.read.add("access_log")
        if value is None or value is False or value == "off":
            return AccessLog()
        if value is True or value in ("stdout", "-"):
            return AccessLog(enabled=True)
        if isinstance(value, str) and value.lower() in _YAML11_BOOLS:
            raise self.error(
                top.at("access_log"),
                f"{value!r} is not a boolean in YAML 1.2: write true (standard output),"
                " false (no access log) or a file path",
            )
        if isinstance(value, str) and value:
            return AccessLog(enabled=True, path=self._output_file(top.at("access_log"), value))
        raise self.error(
            top.at("access_log"),
            f"must be true (standard output), false (none) or a file path, not {describe(value)}",
        )

    def _admin(self, top: _Section, listeners: list[Listener]) -> AdminListener | None:
        """`admin: {address: host:port}`: never one of the public listeners."""
        if not top.has("admin"):
            top.read.add("admin")
            return None
        sec = top.section("admin")
        host, port = self._address(sec, "address")
        sec.done()
        for listener in listeners:
            if port != 0 and listener.port == port and _overlaps(listener.host, host):
                raise self.error(
                    sec.at("address"),
                    f"the admin listener must not share the address of listener {listener.name!r}",
                )
        return AdminListener(host, port)

    def _api(
        self,
        top: _Section,
        listeners: list[Listener],
        admin: AdminListener | None,
        agents: AgentIngress | None,
    ) -> ApiListener | None:
        """`api: {address, tls, audit_log}`: the admin API (docs/control-plane.md),
        on an address no other listener has."""
        if not top.has("api"):
            top.read.add("api")
            return None
        sec = top.section("api")
        host, port = self._address(sec, "address")
        tls = self._tls(sec.section("tls")) if sec.has("tls") else None
        taken = [(ln.host, ln.port, f"listener {ln.name!r}") for ln in listeners]
        if admin is not None:
            taken.append((admin.host, admin.port, "the admin listener"))
        if agents is not None:
            taken.append((agents.host, agents.port, "the agent ingress"))
        for other_host, other_port, what in taken:
            if port != 0 and other_port == port and _overlaps(other_host, host):
                raise self.error(sec.at("address"), f"the admin API shares the address of {what}")
        audit: list[str] = []
        sec.read.add("audit_log")
        value = sec.data.get("audit_log")
        items = value if isinstance(value, list) else [] if value in (None, False) else [value]
        for i, item in enumerate(items):
            path = (*sec.at("audit_log"), i) if isinstance(value, list) else sec.at("audit_log")
            if not isinstance(item, str) or not item:
                raise self.error(path, "must be stdout, stderr, a file path or a list of them")
            target = item if item in ("stdout", "stderr") else str(self._output_file(path, item))
            if target in audit:
                raise self.error(path, f"{item!r} is listed twice")
            audit.append(target)
        events = self._event_destinations(sec)
        sso = None
        if sec.has("sso"):
            from edgeward.admin.sso.settings import SettingsError
            from edgeward.admin.sso.settings import parse as parse_sso

            sec.read.add("sso")
            try:
                sso = parse_sso(sec.data["sso"], self.base)
            except SettingsError as exc:
                raise self.error((*sec.at("sso"), *exc.path), exc.msg) from None
        sec.done()
        return ApiListener(host, port, tls, tuple(audit), events=events, sso=sso)

    def _event_destinations(self, sec: _Section) -> tuple[dict[str, Any], ...]:
        """`api.events`: a list of `{name, format, target, sources, filter}`,
        each a destination with its subscription (docs/control-plane.md)."""
        from edgeward.events import spec
        from edgeward.events.errors import SpecError

        sec.read.add("events")
        value = sec.data.get("events")
        if value is None:
            return ()
        where = sec.at("events")
        if not isinstance(value, list):
            raise self.error(where, "must be a list of event destinations")
        out: list[dict[str, Any]] = []
        allowed = {"name", "format", "target", "sources", "filter"}
        for i, item in enumerate(value):
            at = (*where, i)
            if not isinstance(item, dict):
                raise self.error(at, "must be a mapping: {name, format, target, sources, filter}")
            for key in item:
                if key not in allowed:
                    raise self.error(
                        (*at, key), f"unknown key; known: {', '.join(sorted(allowed))}"
                    )
            name = item.get("name")
            if not isinstance(name, str) or not name.replace("-", "_").isidentifier():
                raise self.error((*at, "name"), "a name (letters, digits, - and _) is required")
            if any(o["name"] == name for o in out):
                raise self.error((*at, "name"), f"{name!r} is listed twice")
            sources = item.get("sources", ["*"])
            try:
                spec.destination(f"cfg_{name}", item.get("format"), item.get("target"))
                spec.subscription(f"cfg_{name}", sources, [f"cfg_{name}"], item.get("filter"))
            except SpecError as exc:
                parts: list[str | int] = []
                for part in exc.field.replace("]", "").replace("[", ".").split("."):
                    parts.append(int(part) if part.isdigit() else part)
                if parts and parts[0] == "sources" and len(parts) > 2:
                    parts = parts[:2]  # sources[i].type: the i-th string here
                raise self.error((*at, *parts), exc.message) from None
            out.append({"name": name, **item, "sources": list(sources)})
        return tuple(out)

    def _agent_ingress(
        self, top: _Section, listeners: list[Listener], admin: AdminListener | None
    ) -> AgentIngress | None:
        """`agent_ingress:`: where agents connect, what they may bind
        (docs/agents.md)."""
        if not top.has("agent_ingress"):
            top.read.add("agent_ingress")
            return None
        sec = top.section("agent_ingress")
        host, port = self._address(sec, "address")
        if not sec.has("tls"):
            raise self.error(sec.path, "missing required key 'tls': agents connect over TLS only")
        tls = self._tls(sec.section("tls"))
        taken = [(ln.host, ln.port, f"listener {ln.name!r}") for ln in listeners]
        if admin is not None:
            taken.append((admin.host, admin.port, "the admin listener"))
        for other_host, other_port, what in taken:
            if port != 0 and other_port == port and _overlaps(other_host, host):
                raise self.error(
                    sec.at("address"), f"the agent ingress shares the address of {what}"
                )
        domains = []
        for i, item in enumerate(sec.take("domains", list, [])):
            name = item.lower().rstrip(".") if isinstance(item, str) else item
            if not isinstance(name, str) or not _HOSTNAME.match(name) or is_internal(name):
                raise self.error(
                    (*sec.at("domains"), i),
                    f"must be a public hostname or *.domain, not {item!r}"
                    " (.internal names need no entry)",
                )
            domains.append(name)
        names = {ln.name for ln in listeners}
        served = tuple(sec.take("listeners", list, sorted(names)))
        for i, ln in enumerate(served):
            if ln not in names:
                raise self.error((*sec.at("listeners"), i), f"no listener named {ln!r}")
        tcp = self._agent_tcp(sec.section("tcp"), host) if sec.has("tcp") else None
        grace = sec.take("grace_period", float, 10.0)
        if grace < 0:
            raise self.error(sec.at("grace_period"), "must be 0 or more seconds")
        policy = self._policy(sec, "agent ingress")
        if policy is not None:
            data = policy.document.data
            phases = set(data) if isinstance(data, dict) else set()
            if phases - {"on_tcp_connect"}:
                raise self.error(
                    sec.at(
                        "traffic_policy" if sec.has("traffic_policy") else "traffic_policy_file"
                    ),
                    "the agent ingress's policy runs only on_tcp_connect (where agents may"
                    f" connect from), not {', '.join(sorted(phases - {'on_tcp_connect'}))}",
                )
        sec.done()
        return AgentIngress(
            host,
            port,
            tls,
            tuple(domains),
            served,
            tcp,
            grace,
            policy,
            location=self.doc.locate(sec.at("address")),
        )

    def _agent_tcp(self, sec: _Section, ingress_host: str) -> AgentTcp:
        listen = sec.take("address", str, ingress_host) or "0.0.0.0"
        listen = listen[1:-1] if listen.startswith("[") and listen.endswith("]") else listen
        raw = sec.take("ports", str)
        low, sep, high = raw.partition("-")
        if not (low.isdigit() and (not sep or high.isdigit())):
            raise self.error(sec.at("ports"), f"must be PORT or LOW-HIGH, not {raw!r}")
        first, last = int(low), int(high) if sep else int(low)
        if not 0 < first <= last < 65536:
            raise self.error(sec.at("ports"), f"not a range of TCP ports: {raw!r}")
        wildcard = listen in ("0.0.0.0", "::", "")
        host = sec.take("host", str, "localhost" if wildcard else listen).lower().rstrip(".")
        if not _HOSTNAME.match(host) and not _is_ip(host):
            raise self.error(sec.at("host"), f"not a hostname or IP address: {host!r}")
        sec.done()
        return AgentTcp(listen, (first, last), host)

    def _output_file(self, path: PathKey, value: str) -> Path:
        """A file the edge appends to (relative to the config's directory):
        its directory must exist; it is created at the first write."""
        file = Path(os.path.abspath(self.base / value))
        if not file.parent.is_dir():
            raise self.error(path, f"directory not found: {file.parent}")
        if file.is_dir():
            raise self.error(path, f"is a directory, not a file: {file}")
        return file

    def _events(self, top: _Section) -> tuple[str, ...] | None:
        """`events`: stdout, stderr, a file (relative to the config's
        directory), a list of them, or off. None when absent: the policy
        layer then falls back to ``EDGEWARD_POLICY_EVENTS``."""
        top.read.add("events")
        value = top.data.get("events")
        if value is None:
            return None
        if value is False or value == "off":
            return ()
        if value == []:
            raise self.error(top.at("events"), "an empty list: write off for no events")
        is_list = isinstance(value, list)
        out: list[str] = []
        for i, item in enumerate(value if is_list else [value]):
            path = (*top.at("events"), i) if is_list else top.at("events")
            if is_list and item == "off":
                raise self.error(path, "off stands alone, not in a list")
            if not isinstance(item, str) or item in ("", "on"):
                got = repr(item) if isinstance(item, str) else describe(item)
                raise self.error(
                    path, f"must be stdout, stderr, a file path, a list of them, or off; not {got}"
                )
            target = item if item in ("stdout", "stderr") else str(self._output_file(path, item))
            if target in out:
                raise self.error(path, f"{item!r} is listed twice")
            out.append(target)
        return tuple(out)

    def _state_dir(self, top: _Section) -> Path | None:
        """`state_dir`: where the state store lives, relative to the config's
        directory (`~` expands); created at the first open, not here."""
        if not top.has("state_dir"):
            return None
        value = top.take("state_dir", str)
        if not value:
            raise self.error(top.at("state_dir"), "must be a directory path, not empty")
        path = Path(os.path.abspath(self.base / os.path.expanduser(value)))
        if path.exists() and not path.is_dir():
            raise self.error(top.at("state_dir"), f"not a directory: {path}")
        return path

    def _store_url(self, top: _Section) -> str | None:
        """`store_url`: an SQLAlchemy URL of the store's database, PostgreSQL
        (`postgresql://user@host/db`; the password from libpq's PGPASSFILE or
        PGPASSWORD, never in this file). Absent: SQLite in the state dir."""
        if not top.has("store_url"):
            return None
        value = top.take("store_url", str)
        scheme = value.partition("://")[0]
        if scheme not in ("postgresql", "postgresql+psycopg", "sqlite"):
            raise self.error(top.at("store_url"), "must be a postgresql:// (or sqlite:///FILE) URL")
        if scheme.startswith("postgresql") and ":" in value.partition("://")[2].partition("@")[0]:
            raise self.error(
                top.at("store_url"),
                "no password in the config: use libpq's PGPASSFILE or PGPASSWORD",
            )
        return value

    def _networks(self, sec: _Section, key: str) -> tuple[Network, ...]:
        items = sec.take(key, list, [])
        out = []
        for i, item in enumerate(items):
            try:
                out.append(ipaddress.ip_network(str(item), strict=False))
            except ValueError:
                raise self.error(
                    (*sec.at(key), i), f"not an IP address or CIDR: {item!r}"
                ) from None
        return tuple(out)

    def _forwarded(self, sec: _Section) -> ForwardedTrust:
        trusted = self._networks(sec, "trust")
        sec.done()
        return ForwardedTrust(trusted)

    def _http_request(self, sec: _Section) -> OutboundAllowList:
        """`http_request.allow_external`: host names (`api.example.com`,
        `*.example.com`) and addresses or CIDRs the http-request action may
        call; absent, nothing outside the edge."""
        hosts: list[str] = []
        networks: list[Network] = []
        for i, item in enumerate(sec.take("allow_external", list, [])):
            path = (*sec.at("allow_external"), i)
            if not isinstance(item, str) or not item:
                raise self.error(path, f"must be a host name, an address or a CIDR, not {item!r}")
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
                continue
            except ValueError:
                pass
            name = item.lower().rstrip(".")
            if not _HOSTNAME.match(name) or name == "*":
                raise self.error(path, f"not a host name, an address or a CIDR: {item!r}")
            hosts.append(name)
        sec.done()
        return OutboundAllowList(tuple(hosts), tuple(networks))

    def _ip_intelligence(self, sec: _Section) -> IpIntelligence:
        """`ip_intelligence`: MaxMind DB files (`geo_db`, `asn_db`) and CIDR
        list files by category (`categories`, `tor_exit_nodes` for
        `proxy.anonymous.tor`, `blocklists` for `blocklist.<name>`);
        docs/policy.md, IP intelligence."""
        if not sec.data:
            sec.done()
            return NO_IP_INTELLIGENCE
        origins = {}
        paths: dict[str, Path | None] = {}
        for key in ("geo_db", "asn_db"):
            paths[key] = self._file(sec, key) if sec.has(key) else None
            origins[key] = self.doc.locate(sec.at(key))
        categories: dict[str, Path] = {}

        def add(name: str, table: _Section, key: str) -> None:
            if not _CATEGORY.fullmatch(name):
                raise self.error(
                    table.at(key),
                    f"category names are dotted lower-case words"
                    f" (com.example.office), not {name!r}",
                )
            if name in categories:
                raise self.error(table.at(key), f"category {name!r} is given twice")
            categories[name] = self._file(table, key)
            origins[f"categories.{name}"] = self.doc.locate(table.at(key))

        for group, prefix in (("categories", ""), ("blocklists", "blocklist.")):
            table = sec.section(group)
            for name in list(table.data):
                add(prefix + str(name), table, name)
            table.done()
        if sec.has("tor_exit_nodes"):
            add("proxy.anonymous.tor", sec, "tor_exit_nodes")
        sec.done()
        return load_ip_intelligence(Sources(paths["geo_db"], paths["asn_db"], categories, origins))

    def _owasp_crs(self, sec: _Section) -> Path | None:
        """`owasp_crs.rules_dir`: the Core Rule Set the owasp-crs actions run
        (the directory holding `rules/`, relative to the config's
        directory); absent, Debian's /usr/share/modsecurity-crs. Loaded
        once, when a policy first uses it."""
        value = sec.take("rules_dir", str, "")
        sec.done()
        if not value:
            return None
        path = Path(os.path.abspath(self.base / os.path.expanduser(value)))
        if not path.is_dir():
            raise self.error(sec.at("rules_dir"), f"not a directory: {path}")
        return path

    def _ip_policies(self, sec: _Section) -> dict[str, IpPolicy]:
        out = {}
        for name in list(sec.data):
            entry = sec.section(name)
            out[name] = IpPolicy(
                name, self._networks(entry, "allow"), self._networks(entry, "deny")
            )
            entry.done()
        return out

    def _list(self, top: _Section, key: str, build: Callable[[_Section], T]) -> list[T]:
        items = top.take(key, list, [])
        return [build(_Section(self, (key, i), item)) for i, item in enumerate(items)]

    def _unique(self, top: _Section, key: str, names: list[str], what: str) -> set[str]:
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                raise self.error((key, i, "name"), f"duplicate {what} {name!r}")
            seen.add(name)
        return seen

    def _unique_hostnames(self, top: _Section, endpoints: list[Endpoint]) -> None:
        seen: dict[tuple[str, str], str] = {}
        for i, ep in enumerate(endpoints):
            for listener in ("",) if ep.internal else ep.listeners:  # "": internal endpoints
                other = seen.get((listener, ep.hostname))
                if other is not None:
                    raise self.error(
                        ("endpoints", i, "hostname"),
                        f"duplicate hostname {ep.hostname!r} on listener {listener!r}"
                        f" (also endpoint {other!r})",
                    )
                seen[(listener, ep.hostname)] = ep.name

    def _file(self, sec: _Section, key: str) -> Path:
        path = self.base / sec.take(key, str)
        if not path.is_file():
            raise self.error(sec.at(key), f"file not found: {path}")
        return path

    def _listener(self, sec: _Section) -> Listener:
        name = sec.take("name", str)
        if not _NAME.match(name):
            raise self.error(sec.at("name"), "must be letters, digits, '_', '.' or '-'")
        host, port = self._address(sec, "address")
        tls = self._tls(sec.section("tls")) if sec.has("tls") else None
        http2 = sec.take("http2", bool, True)
        policy = self._policy(sec, f"listener {name}")
        sec.done()
        return Listener(name, host, port, tls, http2, policy)

    def _address(self, sec: _Section, key: str) -> tuple[str, int]:
        value = sec.take(key, str)
        host, sep, port = value.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise self.error(sec.at(key), f"must be host:port, not {value!r}")
        return host or "0.0.0.0", int(port)

    def _tls(self, sec: _Section) -> ListenerTls:
        certs = []
        items = sec.take("certificates", list)
        if not items:
            raise self.error(sec.at("certificates"), "at least one certificate is required")
        for i, item in enumerate(items):
            csec = _Section(self, (*sec.at("certificates"), i), item)
            cert, key = self._file(csec, "cert"), self._file(csec, "key")
            try:
                names = _certificate_names(cert)
            except ValueError as exc:
                raise self.error(csec.at("cert"), f"not a PEM certificate: {exc}") from None
            csec.done()
            certs.append(Certificate(cert, key, names))
        client_ca = self._file(sec, "client_ca") if sec.has("client_ca") else None
        mode = sec.take("client_cert", str, "required")
        if mode not in ("required", "optional"):
            raise self.error(sec.at("client_cert"), "must be 'required' or 'optional'")
        sec.done()
        return ListenerTls(tuple(certs), client_ca, mode)  # type: ignore[arg-type]

    def _endpoint(self, sec: _Section, listener_names: set[str]) -> Endpoint:
        hostname = sec.take("hostname", str).lower().rstrip(".")
        if not _HOSTNAME.match(hostname):
            raise self.error(sec.at("hostname"), f"not a hostname or *.wildcard: {hostname!r}")
        name = sec.take("name", str, hostname)
        upstream = self._upstream(sec)
        if is_internal(hostname):
            if sec.has("listeners"):
                raise self.error(
                    sec.at("listeners"),
                    f"{hostname!r} is an internal endpoint: it is on no listener, only"
                    " forward-internal reaches it",
                )
            sec.read.add("listeners")
        listeners = tuple(sec.take("listeners", list, sorted(listener_names)))
        if is_internal(hostname):
            listeners = ()
        for i, ln in enumerate(listeners):
            if ln not in listener_names:
                raise self.error((*sec.at("listeners"), i), f"no listener named {ln!r}")
        host_header = sec.take("host_header", str, "preserve")
        escaped_slashes = sec.take("escaped_slashes", str, "reject")
        if escaped_slashes not in ESCAPED_SLASH_ACTIONS:
            raise self.error(
                sec.at("escaped_slashes"),
                f"must be {', '.join(map(repr, ESCAPED_SLASH_ACTIONS))}, not {escaped_slashes!r}",
            )
        metadata = sec.take("metadata", dict, {})
        for k, v in metadata.items():
            if not isinstance(v, str):
                raise self.error((*sec.at("metadata"), k), "metadata values must be strings")
        policy = self._policy(sec, f"endpoint {name}")
        sec.done()
        return Endpoint(
            name,
            hostname,
            upstream,
            listeners,
            host_header,
            metadata,
            policy,
            escaped_slashes=escaped_slashes,  # type: ignore[arg-type]
        )

    def _upstream(self, sec: _Section) -> Upstream:
        """`upstream: URL`, or `upstream: {url: URL, protocol: http1|http2}`."""
        protocol: UpstreamProtocol = "http1"
        where = sec.at("upstream")
        if isinstance(sec.data.get("upstream"), dict):
            up = sec.section("upstream")
            url = up.take("url", str)
            where = up.at("url")
            name = up.take("protocol", str, "http1")
            if name not in UPSTREAM_PROTOCOLS:
                raise self.error(
                    up.at("protocol"),
                    f"must be {' or '.join(map(repr, UPSTREAM_PROTOCOLS))}, not {name!r}",
                )
            protocol = name
            up.done()
        else:
            url = sec.take("upstream", str, what="a URL or a mapping with url and protocol")
        tls = sec.section("upstream_tls")
        verify = tls.take("verify", bool, True)
        ca = self._file(tls, "ca") if tls.has("ca") else None
        server_name = tls.take("server_name", str, "") or None
        tls.done()
        if url.startswith("unix:"):
            path = url[5:].removeprefix("//")
            if not path:
                raise self.error(where, "unix: needs a socket path")
            return Upstream(url, "unix", str(self.base / path), 0, protocol=protocol)
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or port == -1
            or parts.path not in ("", "/")
            or parts.query
        ):
            raise self.error(
                where, f"must be http://host:port, https://host:port or unix:/path, not {url!r}"
            )
        scheme: Literal["http", "https"] = "https" if parts.scheme == "https" else "http"
        return Upstream(
            url,
            scheme,
            parts.hostname,
            port or (443 if scheme == "https" else 80),
            verify,
            ca,
            server_name,
            protocol,
        )

    def _policy(self, sec: _Section, owner: str) -> PolicySource | None:
        inline, from_file = sec.has("traffic_policy"), sec.has("traffic_policy_file")
        if inline and from_file:
            raise self.error(
                sec.at("traffic_policy_file"),
                "give traffic_policy or traffic_policy_file, not both",
            )
        if inline:
            sec.take("traffic_policy", dict)
            key = sec.at("traffic_policy")
            return PolicySource(
                self.doc.sub(key),
                self.doc.locate(key),
                owner,
                self.events,
                identity=self.identity,
                secrets=self.secrets,
                ip_intelligence=self.ip_intelligence,
            )
        if from_file:
            path = self._file(sec, "traffic_policy_file")
            return PolicySource(
                load_document(path, what="policy file"),
                self.doc.locate(sec.at("traffic_policy_file")),
                owner,
                self.events,
                identity=self.identity,
                secrets=self.secrets,
                ip_intelligence=self.ip_intelligence,
            )
        return None

    # --- identity ---------------------------------------------------------------

    def _identity(self, sec: _Section, listener_names: set[str]) -> IdentityConfig:
        """`identity:`: the auth host, the keys file, the session store
        (docs/identity.md)."""
        auth_host = sec.take("auth_host", str).lower().rstrip(".")
        host, _, port = auth_host.rpartition(":") if ":" in auth_host else (auth_host, "", "")
        if (
            not _HOSTNAME.match(host)
            or host.startswith("*.")
            or (port and not (port.isdigit() and 0 < int(port) < 65536))
        ):
            raise self.error(
                sec.at("auth_host"),
                f"must be a hostname (with an optional :port), not {auth_host!r}: browsers"
                " reach it, and https://<auth_host>/oauth2/callback is the redirect URI to"
                " register at the identity provider",
            )
        keys_file = self._file(sec, "keys_file")
        store = sec.take("session_store", str, "memory")
        if store.startswith("sqlite:"):
            raw_path = store.removeprefix("sqlite:")
            if not raw_path:
                raise self.error(sec.at("session_store"), "sqlite: needs a file path")
            file = self._output_file(sec.at("session_store"), raw_path)
            store = f"sqlite:{file}"
        elif store != "memory" and not store.startswith(("redis://", "rediss://", "unix://")):
            raise self.error(
                sec.at("session_store"),
                f"must be memory, sqlite:<file> or redis://host:port/db, not {store!r}",
            )
        listeners = tuple(sec.take("listeners", list, sorted(listener_names)))
        for i, ln in enumerate(listeners):
            if ln not in listener_names:
                raise self.error((*sec.at("listeners"), i), f"no listener named {ln!r}")
        insecure = sec.take("allow_insecure_loopback_issuer", bool, False)
        providers = []
        psec = sec.section("providers")
        for name in list(psec.data):
            entry = psec.section(name)
            web = entry.take("web", str, "") or None
            api = entry.take("api", str, "") or None
            for key, url in (("web", web), ("api", api)):
                if url is not None and not url.startswith(("https://", "http://")):
                    raise self.error(entry.at(key), f"must be an http(s) URL, not {url!r}")
            entry.done()
            providers.append((name, web, api))
        sec.done()
        return IdentityConfig(
            auth_host=auth_host,
            keys_file=keys_file,
            session_store=store,
            listeners=listeners,
            allow_insecure_loopback_issuer=insecure,
            providers=tuple(providers),
            location=self.doc.locate(sec.at("keys_file")),
        )

    def _with_identity(self, listener: Listener) -> Listener:
        source = listener.policy_source
        if source is None:
            return listener
        return dataclasses.replace(
            listener, policy_source=dataclasses.replace(source, identity=self.identity)
        )

    def _auth_host_endpoint(self, identity: IdentityConfig) -> Endpoint:
        """The auth host as an endpoint whose built-in hooks answer every
        request (it has no upstream)."""
        key: PathKey = ("identity",)
        source = PolicySource(
            self.doc.sub(key),
            self.doc.locate((*key, "auth_host")),
            "identity auth host",
            self.events,
            identity,
            builtin="identity-auth-host",
        )
        host = identity.auth_host.rpartition(":")[0] if ":" in identity.auth_host else None
        return Endpoint(
            name="identity:auth-host",
            hostname=host or identity.auth_host,
            upstream=Upstream("unix:/dev/null", "unix", "/dev/null", 0),
            listeners=identity.listeners,
            policy_source=source,
        )

    def _compiled(self, item: T, ip_policies: Mapping[str, IpPolicy]) -> T:
        source: PolicySource | None = getattr(item, "policy_source", None)
        if source is None or self.factory is None:
            return item
        rules_dir = self.owasp_crs_rules_dir
        source = dataclasses.replace(
            source,
            http_request=self.http_request,
            owasp_crs_rules_dir=str(rules_dir) if rules_dir is not None else None,
        )
        try:
            hooks = self.factory(source, ip_policies)
        except ConfigError:
            raise
        except EdgewardError as exc:
            raise ConfigError(f"traffic policy of {source.owner}: {exc}", source.origin) from exc
        return dataclasses.replace(item, policy=hooks)  # type: ignore[type-var]


def _overlaps(a: str, b: str) -> bool:
    """Whether two listening hosts can clash on one port."""
    wildcard = ("0.0.0.0", "::", "")
    return a == b or a in wildcard or b in wildcard


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# YAML 1.1 booleans that YAML 1.2 (this loader) reads as text.
_YAML11_BOOLS = frozenset({"yes", "no", "on", "y", "n", "true", "false"})


def _unit(field: str, default: object) -> str:
    """The unit a `limits`/`timeouts` number is in, as a suffix."""
    if field.endswith("_bytes"):
        return " bytes"
    if isinstance(default, float):  # every float of both sections is seconds
        return "s"
    return ""


def _certificate_names(path: Path) -> tuple[str, ...]:
    """The DNS names a certificate serves (SAN, else CN), for SNI selection."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = san.value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return tuple(n.lower() for n in names)
