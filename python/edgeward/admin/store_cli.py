"""`edgeward store backup | verify`: backups of the local state store, taken
while the edge runs (`edgeward.store.backup`; docs/operations.md).

Exit codes: 0 done; 1 the store or the backup cannot be read, written or
trusted; 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeward.authtokens.cli import open_store, store_location
from edgeward.errors import EdgewardError

if TYPE_CHECKING:
    from edgeward.store.backup import BackupSummary

OK, INVALID = 0, 1


def register(sub: Any) -> None:
    parser = sub.add_parser("store", help="back up and verify the state store")
    commands = parser.add_subparsers(dest="store_command", required=True)

    backup = commands.add_parser(
        "backup",
        help="copy the state store into a directory, while the edge runs",
        description="Copy the database (one consistent snapshot) and its secret.key into"
        " DIRECTORY, then verify the copy. Restore by copying both into a state directory"
        " no edge is using.",
    )
    backup.add_argument("directory", type=Path, help="a new or empty directory (made mode 0700)")
    backup.add_argument("--json", action="store_true", help="print one JSON object")
    store_location(backup)
    backup.set_defaults(run=run_backup)

    verify = commands.add_parser(
        "verify",
        help="check a backup or a stopped state directory, read-only",
        description="Check integrity, schema revision and that secret.key belongs to the"
        " database; print the rows per table.",
    )
    verify.add_argument("directory", type=Path, help="a backup, or a state directory")
    verify.add_argument("--json", action="store_true", help="print one JSON object")
    verify.set_defaults(run=run_verify)


def run_backup(args: argparse.Namespace) -> int:
    from edgeward.store.backup import backup

    try:
        with open_store(args) as store:
            summary = backup(store, args.directory)
    except EdgewardError as exc:
        return _fail("backup", exc)
    return _print(summary, args.json, "Backed up")


def run_verify(args: argparse.Namespace) -> int:
    from edgeward.store.backup import verify

    try:
        summary = verify(args.directory)
    except EdgewardError as exc:
        return _fail("verify", exc)
    return _print(summary, args.json, "Verified")


def _print(summary: BackupSummary, as_json: bool, done: str) -> int:
    if as_json:
        print(json.dumps({**asdict(summary), "directory": str(summary.directory)}))
        return OK
    rows = ", ".join(f"{name} {count}" for name, count in summary.rows.items())
    print(f"{done} {summary.directory}: schema {summary.schema}, revision {summary.revision}")
    print(f"Rows: {rows}")
    return OK


def _fail(command: str, exc: EdgewardError) -> int:
    print(f"edgeward store {command}: {exc}", file=sys.stderr)
    return INVALID


__all__ = ["register"]
