"""Where entries live: the `store` protocol and its backends (`diskstore` with `hitcounts`, `redisstore` with
`redisconnection`, `rediskeys` and `redisnews`), the one `cache.store` names (`opening`), the memory tier (`hot`)
in front of the store with its writer (`layered`, `writer`), the answers of a sampled request's bucket (`slots`),
and the export format (`portable`)."""
