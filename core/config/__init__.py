"""Settings: `settings` (every setting, its default and sources), `parsing` (the value parsers) and `file`
(writing config.toml with its comments kept)."""
