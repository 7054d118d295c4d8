"""Helpers the tests share: real servers (SMTP, serve), campaign files, PDFs and keys."""
