"""Ollama as the engine itself calls it (health probes, tuning runs, loaded and installed models, unload):
`client`, on the official `ollama` package. The proxy's data path does not use it: it relays bytes."""
