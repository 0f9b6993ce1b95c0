"""What the engine reports: `stats` (counters and latencies), `resources` (CPU and memory via psutil),
`metrics` (Prometheus text) and `events` (named events for `/-/events` subscribers)."""
