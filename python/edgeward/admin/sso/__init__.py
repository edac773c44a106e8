"""Sign-in to the console and the API (docs/control-plane.md#sso-and-mfa):

- `settings`: `api.sso` in edge.yml (parsed by the config loader);
- `oidc`: the OpenID Connect login, sans-IO, on `edgeward.identity`'s
  discovery, key set and ID-token validation; `fetch` performs its fetches;
- `saml`: the SAML 2.0 SP (pysaml2, xmlsec1), replay and time checks;
- `mfa`: the rule a login must meet (`amr`/`acr`, `AuthnContextClassRef`);
- `breakglass`: the local admin with a password and TOTP;
- `ratelimit`: login attempts per client IP;
- `pages`: the HTML pages and their security headers;
- `web`: the Starlette routes that move the bytes.

The web sessions these logins make are `edgeward.admin.session`; the
accounts (users, invitations) `edgeward.admin.users`.
"""
