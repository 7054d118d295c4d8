"""Signer keys for tests that write to the signer store without an installation (no App, no key
file): one fixed secret, so that a helper and the test around it key signers alike."""

from __future__ import annotations

from delivery.storage.keys import SignerKeys

TEST_KEYS = SignerKeys(b"petition-delivery test secret, not for use".ljust(32, b"."))
