"""``python -m tests.fakes``: same as ``python -m tests.fakes.ollama_server``."""

import sys

from tests.fakes.ollama_server import main

sys.exit(main())
