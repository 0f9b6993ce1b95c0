"""Running the local Ollama: `machine` (the pure state machine) with its `vocabulary` (events, actions, policy),
`process` (the side that spawns, checks and stops it), `binary` (finding `ollama`) and `takeover` (who gets port 11434)."""
