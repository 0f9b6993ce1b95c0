"""Talking to a running engine: `endpoints` (every call declared once), `api` (the `/-/` routes built from it,
with the token check in one place) and `handlers` (what each call does), `controlled` (what the API needs of the
engine), `client` with `calls` (the one typed client the CLI and the desktop app use), `token` (the per-install
secret) and `running` (running.json: where the engine listens)."""
