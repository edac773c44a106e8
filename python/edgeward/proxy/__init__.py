"""The data plane: a trio reverse proxy for HTTP/1.1 and HTTP/2.

`server.Server` listens and accepts; `http1`/`http2` drive a client
connection each; `exchange` routes, runs policy hooks and forwards one
request; `upstream` keeps pooled HTTP/1.1 connections to upstreams.
docs/proxy.md has the design.
"""
