"""IP prefix matching: allow/deny policies (``restrict-ips``, IP policies)
and longest-prefix tables (IP categories, geo tables).

Import the classes from `edgeward.native`, which binds them to the Rust
module or to the pure-Python twin in `edgeward.ipnet.reference`. The
semantics are in docs/ipnet.md.
"""
