"""The store under every stage: tables, the database edge, the key, users, erasure."""
