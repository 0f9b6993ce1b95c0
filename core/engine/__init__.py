"""The engine at the top: `engine` assembles the store, proxy, control API and supervisor from the settings,
`entries` and `models` (the stored entries and Ollama's models, as the control API reaches them), `reporting`
what it reports (health, stats snapshots and their feed on `/-/events`), `reconfigure` changes it while it runs
(a thread count, the settings table), `tuning_runs` runs measurements for the control API, `warmup` the warm-up
job, `startup` decides before binding (find Ollama, port takeover), `server` runs it all under uvicorn."""
