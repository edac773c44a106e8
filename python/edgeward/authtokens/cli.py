"""`edgeward authtoken create | list | revoke` on the local state store, or
through the admin API with `--api URL` (and an API key: `--api-key` or
``EDGEWARD_API_KEY``), with the same output.

Exit codes: 0 done; 1 invalid input (a bad ACL rule, an unknown id, a value
too long, a config or store that cannot be read); 2 usage (argparse's own,
and `create` without any `--acl`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeward.authtokens.acl import Acl, AclError
from edgeward.errors import EdgewardError

if TYPE_CHECKING:  # imported when a command runs: `edgeward serve` need not load SQLAlchemy
    from edgeward.store import AuthtokenRow, Store

OK, INVALID, USAGE = 0, 1, 2


def register(sub: Any) -> None:
    """Add `authtoken create|list|revoke` to the `edgeward` parser."""
    parser = sub.add_parser("authtoken", help="create, list and revoke agent authtokens")
    commands = parser.add_subparsers(dest="authtoken_command", required=True)

    create = commands.add_parser(
        "create",
        help="create an authtoken and print it (once)",
        description="Create an authtoken. The token is printed once: only its hash is stored.",
    )
    create.add_argument("--description", default="", help="up to 255 bytes")
    create.add_argument(
        "--acl",
        action="append",
        default=[],
        metavar="RULE",
        help="a bind rule, repeatable: '*', bind:HOST, bind:*.SUFFIX, bind:HOST:PORT,"
        " bind:KEY=VALUE (at least one; '*' for an unrestricted token)",
    )
    create.add_argument("--metadata", default="", help="free text, up to 4096 bytes")
    create.add_argument("--json", action="store_true", help="print one JSON object")
    _store_options(create)
    create.set_defaults(run=run_create)

    listing = commands.add_parser("list", help="list authtokens (never their tokens)")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    _store_options(listing)
    listing.set_defaults(run=run_list)

    revoke = commands.add_parser("revoke", help="revoke an authtoken: its agents are disconnected")
    revoke.add_argument("id", help="the authtoken's id (at_...)")
    _store_options(revoke)
    revoke.set_defaults(run=run_revoke)


def store_location(parser: argparse.ArgumentParser) -> argparse._MutuallyExclusiveGroup:
    """`--config` / `--state-dir`: where the local state store is (`open_store`).
    The group is returned for alternatives of the caller's own."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--config", "-c", help="edge config whose state_dir to use")
    where.add_argument("--state-dir", type=Path, help="the state directory")
    return where


def _store_options(parser: argparse.ArgumentParser) -> None:
    where = store_location(parser)
    where.add_argument("--api", metavar="URL", help="an edge's admin API instead of a local store")
    parser.add_argument(
        "--api-key", help="with --api: the API key (default: $EDGEWARD_API_KEY)", default=None
    )
    parser.add_argument("--api-ca", metavar="FILE", help="with --api: CA bundle to verify its TLS")


def _client(args: argparse.Namespace) -> Any:
    from edgeward.apiclient import API_KEY_ENV, ApiClient, ApiClientError

    key = args.api_key or os.environ.get(API_KEY_ENV, "")
    if not key:
        raise ApiClientError(f"--api needs an API key: --api-key or ${API_KEY_ENV}")
    return ApiClient(args.api, key, ca=args.api_ca)


def _from_api(item: dict[str, Any]) -> dict[str, Any]:
    return {
        k: item.get(k) for k in ("id", "description", "metadata", "acl", "created_at", "revoked_at")
    }


def run_create(args: argparse.Namespace) -> int:
    if not args.acl:
        print(
            "edgeward authtoken create: give at least one --acl rule; an authtoken with no"
            " rules may bind any endpoint, so say so with --acl '*'",
            file=sys.stderr,
        )
        return USAGE
    from edgeward.authtokens import manage

    try:
        acl = Acl.parse(args.acl, source="--acl")
        if args.api is not None:
            answer = _client(args).call(
                "POST",
                "/credentials",
                {
                    "acl": list(acl.texts),
                    "description": args.description,
                    "metadata": args.metadata,
                },
            )
            row, token = _from_api(answer), str(answer["token"])
        else:
            with open_store(args) as store:
                created = manage.create(
                    store, acl=acl, description=args.description, metadata=args.metadata
                )
            row, token = _json(created.row), created.token.text
    except EdgewardError as exc:
        return _fail("create", exc)
    if args.json:
        print(json.dumps({**row, "token": token}))
        return OK
    described = f" ({row['description']})" if row["description"] else ""
    print(f"Created authtoken {row['id']}{described}")
    print(f"ACL: {', '.join(row['acl'])}")
    print("The token, shown only now (the store keeps a hash of it):")
    print(token)
    return OK


def run_list(args: argparse.Namespace) -> int:
    from edgeward.authtokens import manage

    try:
        if args.api is not None:
            items = [_from_api(item) for item in _client(args).pages("/credentials", "credentials")]
            rows = sorted(items, key=lambda row: (row["created_at"], row["id"]))  # oldest first
        else:
            with open_store(args) as store:
                rows = [_json(row) for row in manage.list_all(store)]
    except EdgewardError as exc:
        return _fail("list", exc)
    if args.json:
        print(json.dumps(rows, indent=2))
        return OK
    table = [("ID", "DESCRIPTION", "ACL", "CREATED", "REVOKED")]
    table += [
        (
            row["id"],
            row["description"],
            ", ".join(row["acl"]) or "(unrestricted)",
            row["created_at"],
            row["revoked_at"] or "-",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
    return OK


def run_revoke(args: argparse.Namespace) -> int:
    from edgeward.authtokens import manage

    try:
        if args.api is not None:
            client = _client(args)
            client.call("DELETE", f"/credentials/{args.id}")
            revoked_at = str(client.call("GET", f"/credentials/{args.id}")["revoked_at"])
        else:
            with open_store(args) as store:
                row = manage.revoke(store, args.id)
            assert row.revoked_at is not None
            revoked_at = _time(row.revoked_at)
    except EdgewardError as exc:
        return _fail("revoke", exc)
    print(f"Revoked authtoken {args.id} at {revoked_at}")
    return OK


def open_store(args: argparse.Namespace) -> Store:
    """The local state store that `store_location`'s options name."""
    from edgeward.store import Store, statedir

    state_dir: Path | None = args.state_dir
    url = None
    if args.config is not None:
        from edgeward.config import load_config  # the config only says where the store is

        config = load_config(args.config)
        state_dir, url = config.state_dir, config.store_url
    return Store.open(statedir.resolve(state_dir), url=url)


def _fail(command: str, exc: EdgewardError) -> int:
    lines = [p.describe(exc.source) for p in exc.problems] if isinstance(exc, AclError) else [exc]
    for line in lines:
        print(f"edgeward authtoken {command}: {line}", file=sys.stderr)
    return INVALID


def _json(row: AuthtokenRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "description": row.description,
        "metadata": row.metadata,
        "acl": list(row.acl),
        "created_at": _time(row.created_at),
        "revoked_at": _time(row.revoked_at) if row.revoked_at else None,
    }


def _time(value: datetime) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


__all__ = ["register"]
