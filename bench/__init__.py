"""Runnable benchmarks; each prints its figures.  Run from the repository root as ``python -m bench.<name>``."""

from __future__ import annotations

from tests.servers import Dovecot, dovecot_binary


def started_dovecot() -> Dovecot:
    """A private Dovecot, as the tests start it (needs root and dovecot-imapd)."""
    binary = dovecot_binary()
    if binary is None:
        raise SystemExit("dovecot is not installed (apt-get install dovecot-imapd)")
    dovecot = Dovecot(binary)
    dovecot.start()
    return dovecot
