"""Where the state store lives: the state directory.

In order: `--state-dir` on the command line, `state_dir:` in edge.yml
(relative to the config file), `EDGEWARD_STATE_DIR`, then the XDG base
directory spec's state home, `$XDG_STATE_HOME/edgeward`, by default
`~/.local/state/edgeward`. The default does not depend on a config file, so
`edgeward authtoken create` with no options and `edgeward serve` with a
config that names none use the same store.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "EDGEWARD_STATE_DIR"
DATABASE = "edgeward.db"
SECRET = "secret.key"


def resolve(configured: Path | None = None) -> Path:
    """The state directory, absolute; `configured` is an explicit choice."""
    if configured is not None:
        return Path(os.path.abspath(configured))
    if os.environ.get(ENV):
        return Path(os.path.abspath(os.environ[ENV]))
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "state"
    return base / "edgeward"


__all__ = ["DATABASE", "ENV", "SECRET", "resolve"]
