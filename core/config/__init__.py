"""Settings: `spec` (what a setting's definition is: default, section, kind, effect, help), `specs` (every
setting in order, and the error for one that cannot apply), declared by subject in `specs_proxy`, `specs_cache`,
`specs_ollama` and `specs_tuning`; `settings` (resolving every setting from defaults, the file, the environment and
flags), `parsing` (the value parsers), `table` (the table the settings window is built from), `file` (writing
config.toml with its comments kept) and `private` (files and directories only the user can read, written
atomically)."""
