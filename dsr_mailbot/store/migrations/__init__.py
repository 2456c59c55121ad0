"""Schema migrations (Alembic), shipped inside the package; run by :mod:`dsr_mailbot.store.schema`, never by hand."""
