"""Dossier: frozen signer set + campaign → the document model → HTML and page data (render)."""
