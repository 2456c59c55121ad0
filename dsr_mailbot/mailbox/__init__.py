"""Stage 1: where messages come from (IMAP, Maildir) and where handled requests go (archive)."""
