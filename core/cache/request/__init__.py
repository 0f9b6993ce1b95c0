"""What a request is and how it is answered: its canonical form and key (`keys` with `canonical_json`, `requests`,
the model builds in `builds`), the client's controls (`controls`), the decision and the plan the proxy carries out
(`decision`, `plan`), one entry for both stream modes (`modes` with `merge` and `synthesis`; Anthropic's Messages in
`anthropic_messages`, OpenAI's Responses in `openai_responses`; the stream formats in `wire`), OpenAI streams
recorded with their usage (`usage`), batch embeddings per input (`per_input`), each API's errors (`errors`),
judging an upstream answer (`recorder`, `verdict`), and why two requests differ (`diff`, `explain`). The decision
modules are pure; `builds` asks Ollama for its models and keeps their digests in a file, `recorder` gathers an
answer as it streams."""
