"""The control plane's side of the running edge: a watcher on the state
store (`AsyncStore.watch`, every 250 ms) that reads a `ControlSnapshot`
after every change and hands it to the server, which applies it without a
restart and without touching open connections:

- IP restrictions: `agent` is checked when an agent authenticates (and
  sessions from an address a new restriction denies are stopped),
  `endpoints` when a client connects to a listener or an agent's tcp
  endpoint; `api` and `dashboard` by the admin API (`admin.ip_policies`).
- endpoints made through the API: compiled here (their policy with
  edge.yml's secrets and the store's vaults) into `edgeward.config.Endpoint`s
  the server adds to a new generation, as a reload does; new connections
  and the next request of open ones take it.

Built when edge.yml has `api:` or `agent_ingress:` (the edges with a state
store).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import trio

from edgeward.admin.dataplane import PolicyProblem
from edgeward.config import EdgeConfig, Endpoint, PolicyFactory, PolicySource, parse_document
from edgeward.control import ControlSnapshot, load
from edgeward.control.endpoints import UrlError, build
from edgeward.errors import ConfigError, EdgewardError, Location
from edgeward.hooks import PolicyHooks
from edgeward.policy.errors import PolicyError
from edgeward.secrets import Secrets
from edgeward.store import Store, statedir
from edgeward.store.control_rows import CloudEndpointRow
from edgeward.store.trio_adapter import AsyncStore

log = logging.getLogger("edgeward.control")

SOURCE = "traffic_policy"  # the file name diagnostics give a policy sent through the API


class ControlPlane:
    """The store, the snapshot in force, and compiling endpoints' policies."""

    def __init__(self, config: EdgeConfig, policy_factory: PolicyFactory | None) -> None:
        logging.getLogger("alembic").setLevel(logging.WARNING)
        self.store = Store.open(statedir.resolve(config.state_dir))
        try:
            self.snapshot: ControlSnapshot = load(self.store)
        except BaseException:
            self.store.close()
            raise
        self._factory = policy_factory
        # id -> (row, vaults, endpoint): unchanged rows are not compiled again
        # (for the same config: a reload compiles them all against its own)
        self._for: EdgeConfig | None = None
        self._built: dict[
            str, tuple[CloudEndpointRow, Mapping[str, Mapping[str, str]], Endpoint]
        ] = {}

    async def serve(
        self,
        publish: Callable[[ControlSnapshot], None],
        *,
        task_status: trio.TaskStatus[ControlSnapshot] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            watcher = AsyncStore(self.store)
            await watcher.watch(load, publish, task_status=task_status)
        finally:
            self.store.close()

    # --- policies -------------------------------------------------------------------------

    def secrets(self, config: EdgeConfig, vaults: Mapping[str, Mapping[str, str]]) -> Secrets:
        """What `secrets.get` reads: the store's vaults, and edge.yml's
        `secrets:` over them (the config file wins on the same name)."""
        merged: dict[str, dict[str, str]] = {v: dict(s) for v, s in vaults.items()}
        for vault, values in config.secrets.items():
            merged.setdefault(vault, {}).update(values)
        return Secrets(merged)

    def compile(
        self, text: str, owner: str, config: EdgeConfig, vaults: Mapping[str, Mapping[str, str]]
    ) -> tuple[PolicySource, PolicyHooks]:
        """Compile a policy sent through the API as the edge runs it; raises
        `ConfigError` (a `PolicyError` lists every diagnostic)."""
        if self._factory is None:
            raise EdgewardError("this edge has no policy engine to run traffic policies")
        source = PolicySource(
            parse_document(text, SOURCE),
            Location(file=SOURCE),
            owner,
            config.events,
            config.identity,
            http_request=config.http_request,
            owasp_crs_rules_dir=(
                str(config.owasp_crs_rules_dir) if config.owasp_crs_rules_dir else None
            ),
            secrets=self.secrets(config, vaults),
            ip_intelligence=config.ip_intelligence,
        )
        return source, self._factory(source, config.ip_policies)

    def check(
        self, text: str, config: EdgeConfig, vaults: Mapping[str, Mapping[str, str]]
    ) -> list[PolicyProblem]:
        """The diagnostics of a policy sent through the API, located as
        `edgeward policy check` locates them (file `traffic_policy`, line,
        column, key path); an error among them refuses it."""
        try:
            _, policy = self.compile(text, "endpoint", config, vaults)
        except PolicyError as exc:
            return [
                _problem(str(d.severity), d.message, d.location, str(d)) for d in exc.diagnostics
            ]
        except ConfigError as exc:
            return [_problem("error", exc.message, exc.location, str(exc))]
        except EdgewardError as exc:
            return [_problem("error", str(exc), None, str(exc))]
        warnings = getattr(policy, "warnings", ())
        return [_problem("warning", w.message, w.location, str(w)) for w in warnings]

    def endpoints(self, config: EdgeConfig, snapshot: ControlSnapshot) -> tuple[Endpoint, ...]:
        """The endpoints of `snapshot` for `config`'s listeners. One that
        does not compile any more (a secret it reads was deleted) keeps its
        last good version, and the problem is logged."""
        built: dict[str, tuple[CloudEndpointRow, Mapping[str, Mapping[str, str]], Endpoint]] = {}
        if config is not self._for:
            self._built, self._for = {}, config
        for row in snapshot.endpoints:
            previous = self._built.get(row.id)
            if previous is not None and previous[0] == row and previous[1] == snapshot.vaults:
                built[row.id] = previous
                continue
            try:
                text = row.traffic_policy
                source, policy = (
                    self.compile(text, f"endpoint {row.url}", config, snapshot.vaults)
                    if text.strip()
                    else (None, None)
                )
                endpoint = build(row, config, source, policy)
            except (ConfigError, EdgewardError, UrlError) as exc:
                log.error("endpoint %s (%s): %s", row.id, row.url, exc)
                if previous is not None:
                    built[row.id] = previous
                continue
            built[row.id] = (row, snapshot.vaults, endpoint)
        self._built = built
        return tuple(entry[2] for entry in built.values())


def _problem(severity: str, message: str, at: Location | None, text: str) -> PolicyProblem:
    at = at or Location(file=SOURCE)
    return PolicyProblem(severity, message, text, at.line, at.column, at.path)


__all__ = ["SOURCE", "ControlPlane"]
