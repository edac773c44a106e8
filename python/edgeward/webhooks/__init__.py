"""Webhook signature verification, the engine of the `verify-webhook` action.

`edgeward.native` exposes `verify_webhook`, `explain_webhook`, `PROVIDERS`
and `DEFAULT_TOLERANCE_S` from the Rust module or from `reference`, the
pure-Python twin. `demo` signs and checks a sample delivery for
``edgeward demo``. Providers, schemes and sources: docs/webhooks.md.
"""
