"""``python -m monitor.cli``: the same as the ``slawatch`` script."""

from monitor.cli.main import main

raise SystemExit(main())
