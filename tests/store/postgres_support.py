"""A real PostgreSQL for the store's tests: a throwaway cluster made by
Debian's `initdb` in a temporary directory, listening on a loopback port,
trust authentication for the `edgeward` role. PostgreSQL refuses to run as
root: under root the cluster belongs to the `postgres` system user."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path

import pytest
from tests.proxy.proxy_support import free_port

ROLE = "edgeward"


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return Path(found[-1]).parent if found else None


def _version(path: str) -> int:
    return int(Path(path).parent.parent.name.split(".")[0])


class Postgres:
    def __init__(self, bindir: Path, port: int, run_as: list[str]) -> None:
        self.bindir, self.port, self.run_as = bindir, port, run_as
        self._names = count(1)

    def database(self) -> str:
        """A new, empty database; its URL (no password: trust on loopback)."""
        name = f"store{next(self._names)}"
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", ROLE, name)
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{name}"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bindir / tool), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )


@contextmanager
def postgres() -> Iterator[Postgres]:
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (scripts/system-deps installs it)")
    # Not under pytest's basetemp: that is private to root (mode 0700, reset by
    # every pytest run), and under root the cluster runs as `postgres`.
    data = Path(tempfile.mkdtemp(prefix="edgeward-postgres-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        shutil.chown(data, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    cluster = Postgres(bindir, port, run_as)
    try:
        cluster._run("initdb", "-D", str(data), "-U", ROLE, "--auth=trust", "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data} -c fsync=off"
        cluster._run("pg_ctl", "-D", str(data), "-o", options, "-l", f"{data}/log", "-w", "start")
        yield cluster
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(data, ignore_errors=True)
