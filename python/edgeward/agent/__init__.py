"""The edgeward agent (docs/agents.md): publishes local apps through an
edge's agent ingress over one TLS connection (the ngrok agent protocol of
`edgeward.tunnel`). `config` reads the agent config file and options,
`run` is the trio agent (reconnects, re-binds, copies bytes), `console`
prints the URLs and a line per request, `cli` the `edgeward agent`
commands."""
