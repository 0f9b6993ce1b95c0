"""What a request is and how it is answered: its canonical form and key (`keys`, `requests`, the model builds in
`builds`), the client's controls (`controls`), the decision and the plan the proxy carries out (`decision`,
`plan`), one entry for both stream modes (`modes` with `merge` and `synthesis`), judging an upstream answer
(`recorder`), and why two requests differ (`diff`, `explain`). The decision modules are pure; `builds` asks Ollama
for its models and keeps their digests in a file, `recorder` gathers an answer as it streams."""
