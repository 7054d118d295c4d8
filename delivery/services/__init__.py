"""Services: the one application layer. The CLI, the web admin and its API, the scheduler and the
demo call these functions; they open the transactions, write the audit log and call the stages."""
