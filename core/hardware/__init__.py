"""What this machine is: `detect` (the entry point), `cpu` (cores, kinds, SIMD), `gpu`, and one reader per OS
(`linux`, `macos`, `windows`)."""
