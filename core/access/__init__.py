"""Who may use the proxy from beyond this machine: `peers` (which clients need a key, pure) and `keyring` (the
install's API keys, kept as hashes in the config directory)."""
