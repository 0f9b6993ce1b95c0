"""The cache: what a request is and how it is answered (`core.cache.request`), where entries live
(`core.cache.storage`), and what both share: the stored answer (`entry`) and what the in-memory structures cost
(`sizes`). The decision modules are pure: no I/O."""
