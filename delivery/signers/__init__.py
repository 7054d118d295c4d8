"""Signers: raw rows (CSV, form, CLI) → normalised SignerInput values → stored signer rows."""
