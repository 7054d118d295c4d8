"""Mail: bundle files → MIME messages → the outbox's states → SMTP (or .eml files)."""
