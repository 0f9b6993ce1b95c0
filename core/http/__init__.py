"""The proxy on the wire: `proxy` (the ASGI callable of the data path), `relay` (forwarding bytes both ways),
`gate` with `hostcheck` and `cors` (who may talk to it), `inject` (opt-in per-request tuning)."""
