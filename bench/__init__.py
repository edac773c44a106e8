"""edgeward benchmarks: `python -m bench <case> [...]` (`make bench BENCH=ip`).

Every case measures its baseline in the same run and prints medians and
ratios; nothing here asserts a time.
"""
