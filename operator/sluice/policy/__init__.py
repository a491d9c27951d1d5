"""Pure policy: failure classes, retry decisions, backoff, spec validation."""
