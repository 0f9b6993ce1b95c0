"""Running the local Ollama: `machine` (the pure state machine of our Ollama's life), `record` (what it knows
and the steps its transitions share) and `user` (the user's restart, stop and start), with their
`vocabulary` (events, actions, policy); `process` (the side that spawns, checks and stops it) with `child`
(the `ollama serve` process itself), `binary` (finding `ollama`) and `takeover` (who gets port 11434)."""
