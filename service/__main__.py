"""Run the command line as `python -m service`."""

from service.edge.cli import main

raise SystemExit(main())
