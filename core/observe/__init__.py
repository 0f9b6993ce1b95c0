"""What the engine reports: `stats` (counters, rates and latencies), `tally` (the counters of one scope:
all traffic, a model, a route, a client, today), `clients` (naming a client from its User-Agent),
`resources` (CPU and memory via psutil), `metrics` (Prometheus text), `published` (every event, declared once)
and `events` (publishing them to `/-/events` subscribers)."""
