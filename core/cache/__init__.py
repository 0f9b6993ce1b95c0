"""What is cached and how: `keys` (the canonical request and its hash), `requests` (a body's facts, remembered for
repeated bodies), `controls` (the client's per-request headers), `decision` (hit, miss, shared or bypass), `plan`
(what the proxy does with a request), `modes` with `merge` and `synthesis` (one entry for both stream modes),
`recorder` (judging an upstream answer), `entry` (a stored answer), `hot` (the in-memory tier), `slots` (the entry
answering under the sampling policy), `writer` (store writes in batches from one thread), `layered` (the memory tier
in front of the store, as the proxy uses them), `store` (the protocol) and `diskstore` (the embedded backend). The
decision modules are pure: no I/O."""
