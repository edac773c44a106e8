"""Measuring edgeward: `edgeward bench policy|edge` and the repository's
`python -m bench` cases share this harness, so there is one way to measure.

- `timing`: medians of repeated calls (sans-IO benches);
- `table`: the fixed-width tables every bench prints;
- `processes`: ports, child processes and their CPU time (/proc);
- `load`: wrk and h2load runs and what they report;
- `policy`: a compiled policy's cost per request, phase, rule and action;
- `edge`: a running edge's throughput with and without an endpoint's policy;
- `upstream`: the built-in loopback upstream `bench edge` puts behind the edge;
- `plot`: charts (matplotlib, the optional `plot` extra);
- `cli`: the `edgeward bench` subcommands.

Nothing here asserts a time: benchmarks are never tests.
"""
