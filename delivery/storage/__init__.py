"""Storage: the database schema, engine and transactions, the audit log, and the migrations.

Every other package sits on this one; only services and the stages that store or read their own
data (signers, dossier facts, the outbox) import it. Entry points never do.
"""
