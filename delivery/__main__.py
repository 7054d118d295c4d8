"""`python -m delivery` → the command line."""

import sys

from delivery.cli.main import main

sys.exit(main())
