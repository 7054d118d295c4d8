"""The command line (`petition-delivery`, `python -m delivery`): parse, call services, report."""
