"""The engine at the top: `engine` assembles the store, proxy, control API and supervisor from the settings,
`startup` decides before binding (find Ollama, port takeover), `server` runs it all under uvicorn."""
