"""Running it: the wiring, the daemon, run locks, backoff."""
