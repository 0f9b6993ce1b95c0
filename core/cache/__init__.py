"""What is cached and how: `keys` (the canonical request and its hash), `decision` (hit, miss or bypass),
`recorder` (judging an upstream answer), `entry` (a stored answer), `hot` (the in-memory tier), `store` (the protocol)
and `diskstore` (the embedded backend). The decision modules are pure: no I/O."""
