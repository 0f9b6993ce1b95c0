"""Settings: `specs` (each setting's definition: default, section, kind, effect, help), `settings` (resolving
every setting from defaults, the file, the environment and flags), `parsing` (the value parsers), `table`
(the table the settings window is built from), `file` (writing config.toml with its comments kept) and
`private` (files and directories only the user can read, written atomically)."""
