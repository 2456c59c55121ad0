"""Stage 5: the replies: rendered from templates, queued in the outbox, sent."""
