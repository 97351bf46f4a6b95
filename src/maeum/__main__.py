"""``python -m maeum``: the same as the ``maeum`` command."""

from maeum.cli import main

raise SystemExit(main())
