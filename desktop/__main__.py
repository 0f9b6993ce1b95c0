"""``python -m desktop``: the tray app."""

from desktop.app import main

raise SystemExit(main())
