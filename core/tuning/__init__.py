"""Ollama settings for this machine: `recommend` (pure: values and reasons from the hardware), `in_force` (the
recommendation with the user overrides), `measure` and `generation` (finding the fastest thread count by running it)."""
