"""edgeward: a self-hosted secure edge for the apps, APIs and webhook
listeners developers expose to the internet."""

__version__ = "0.1.0"
