"""Settings: `settings` (every setting, its default and sources), `parsing` (the value parsers), `file`
(writing config.toml with its comments kept) and `private` (files and directories only the user can read,
written atomically)."""
