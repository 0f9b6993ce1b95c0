"""A stand-in for one of Ollama's runner processes (llama.cpp's ``llama-server``), which the fake ``ollama``
starts per loaded model (:mod:`tests.fakes.fake_runners`)::

    python -m tests.fakes.fake_runner --model <models>/blobs/sha256-<digest> --port 0

Its command line names its model file as a real runner's does. It holds ``$FAKE_RUNNER_MIB`` MiB of memory
written to (so resident, as a loaded model's weights and caches are), prints ``ready`` on stdout, then runs
until its stdin ends: its Ollama closed it (an unload) or is gone. Standard library only, to start fast.
"""

from __future__ import annotations

import os
import sys

MIB = 1024 * 1024


def main() -> int:
    held = b"\x01" * (int(os.environ.get("FAKE_RUNNER_MIB") or 0) * MIB)  # every page written: resident
    print("ready", flush=True)
    sys.stdin.buffer.read()
    return 0 if held is not None else 1


if __name__ == "__main__":
    sys.exit(main())
