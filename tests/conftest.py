"""Shared test set-up: hypothesis profiles and the backend fixture.

Profiles: ``dev`` (default), ``ci`` (chosen when ``CI`` is set), and
``thorough`` (``pytest --hypothesis-profile=thorough``) for long runs.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
