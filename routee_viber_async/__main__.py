"""``python -m routee_viber_async``: the ``routee-viber`` command line."""

from .cli import main

raise SystemExit(main())
