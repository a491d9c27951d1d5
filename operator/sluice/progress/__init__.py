"""Live progress: the runner's Redis Streams folded into `status.progress` (see relay.py)."""
