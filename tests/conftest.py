"""Shared test set-up: hypothesis profiles and the conformance data set.

Profiles: ``dev`` (default), ``ci`` (chosen when ``CI`` is set: random
seeds, a failure prints how to reproduce it), and
``thorough`` (``pytest --hypothesis-profile=thorough``) for long runs.

The conformance data set (the public example policies, providers' webhook
vectors, cel-spec cases) is not part of the repository. Every test that
reads it asks the `conformance` fixture for its directory:
``EDGEWARD_CONFORMANCE_DIR``, else ``../shared/conformance`` beside the
repository. Without it those tests skip with one line saying so; with
``EDGEWARD_REQUIRE_CONFORMANCE=1`` (as `.ci/run` sets) they fail instead,
so CI cannot go green by skipping them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:
    from tests.store.postgres_support import Postgres

settings.register_profile("dev", max_examples=200, deadline=None)
# CI keeps random seeds (each run explores new inputs); a failure prints the
# `@reproduce_failure` blob, since CI keeps no example database to replay it.
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "thorough", max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE_ENV = "EDGEWARD_CONFORMANCE_DIR"
REQUIRE_ENV = "EDGEWARD_REQUIRE_CONFORMANCE"


def conformance_dir() -> Path:
    """Where the conformance data set is looked for (it may be absent)."""
    configured = os.environ.get(CONFORMANCE_ENV, "").strip()
    return Path(configured) if configured else ROOT.parent / "shared" / "conformance"


@pytest.fixture(scope="session")
def conformance() -> Path:
    """The conformance data set's directory; skips the test when it is
    absent (fails under ``EDGEWARD_REQUIRE_CONFORMANCE=1``)."""
    path = conformance_dir()
    if not path.is_dir():
        message = (
            f"conformance data set not found at {path}: set {CONFORMANCE_ENV} to its directory"
        )
        if os.environ.get(REQUIRE_ENV, "").strip() not in ("", "0"):
            pytest.fail(f"{message} ({REQUIRE_ENV} is set)", pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL cluster for this test run (each test takes a new
    database with `postgres.database()`)."""
    from tests.store.postgres_support import postgres as start

    with start() as cluster:
        yield cluster
