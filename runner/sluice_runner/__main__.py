"""Entry point of the Job's container: `python -m sluice_runner` (see cli.py)."""

from sluice_runner.cli import main

raise SystemExit(main())
