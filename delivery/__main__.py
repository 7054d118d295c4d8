"""`python -m delivery` → the command line."""

import sys

from delivery.cli import main

sys.exit(main())
