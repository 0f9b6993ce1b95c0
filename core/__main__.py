from core.cli.commands import main

raise SystemExit(main())
