"""Talking to a running engine: `api` (the `/-/` routes), `client` (the one typed client the CLI and the desktop
app use), `token` (the per-install secret) and `running` (running.json: where the engine listens)."""
