"""The web console: server-rendered pages (Jinja2 templates, a static
stylesheet, no script) over the admin API of the same process. Every page
is the API's answer for the browser's web session (`client.call`), so the
roles, grants, store code and audit are the API's; the console adds HTML,
the CSRF check of its forms, and the policy editor (`policy_editor`)."""

from edgeward.admin.console.pages import Console

__all__ = ["Console"]
