"""PDF: the dossier model → unsigned PDFs: planned, cached, rendered (WeasyPrint for the front,
the typesetter for signer volumes), joined into parts and restamped."""
