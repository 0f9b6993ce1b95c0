"""The proxy on the wire: `proxy` (the ASGI callable of the data path: it gathers a request's facts and carries
out the plan made of them), `recording` (a miss forwarded, recorded and stored when whole), `embeddings` (a batch
of embeddings answered input by input), `accounts` (the one account of each request: stats and events),
`forwarding` (one request forwarded and its answer streamed back), `upstream` (the connection to Ollama: waits,
the one retry, streaming back, its own failures), `flight` and `follow` (identical requests in flight sharing one
upstream call), `replay` (answering from an entry), `usage_relay` (an OpenAI stream without the usage its client
did not ask for), `relay` (forwarding bytes both ways), `gate` with `hostcheck` and `cors` (who may talk to it),
`header_timeout` (closing connections whose headers are late), `inject` (opt-in per-request tuning)."""
