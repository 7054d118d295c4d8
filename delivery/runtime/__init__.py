"""Runtime: the long-running service (`serve`), its scheduler, its clock and its logs."""
