"""Pure queue logic: ordering (who goes first), capacity (who may go now) and positions."""
