"""edgeward's tests. A regular package: a dependency of the test extra (Canaille,
through pytest-iam) installs a top-level `tests` package of its own, which
would otherwise shadow this namespace."""
