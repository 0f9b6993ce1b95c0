"""The proxy on the wire: `proxy` (the ASGI callable of the data path: routing and the account of each
request), `upstream` (the connection to Ollama: waits, the one retry, streaming back), `flight` and `follow`
(identical requests in flight sharing one upstream call), `replay` (answering from an entry), `relay` (forwarding
bytes both ways), `gate` with `hostcheck` and `cors` (who may talk to it), `header_timeout` (closing
connections whose headers are late), `inject` (opt-in per-request tuning)."""
