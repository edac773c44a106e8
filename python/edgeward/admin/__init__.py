"""The control plane's admin API (docs/control-plane.md): a REST API shaped
like the public ngrok API, served by `edgeward serve` on a listener of its
own (`api:` in edge.yml), over the state store and the agents' registry.

- `keys`: API keys (format, roles, create/list/update/delete in the store);
- `users`, `users_api`: users and invitations (the first SSO login binds);
- `session`: web sessions (cookie, store, CSRF); `sso`: the sign-in (OIDC,
  SAML, MFA rule, break-glass) and its pages;
- `app`: the Starlette application (routes, auth, roles, If-Match, audit);
- `resources`: the JSON shapes, ETags and list pages;
- `openapi`: the OpenAPI document served at `/openapi.json`;
- `audit`: audit events in the public envelope, to JSON Lines outputs;
- `dataplane`: what the API may see and do of the running edge;
- `service`: the listener (hypercorn's trio worker in the edge's loop);
- `cli`: `edgeward api-key create|list|delete`, `edgeward break-glass
  enroll` on the local store.

Starlette and hypercorn are imported only when `api:` is configured (by
`service` and `app`), never by `edgeward serve` without it.
"""
