"""``python -m tada``: see :mod:`tada.cli`."""

from tada.cli import main

raise SystemExit(main())
