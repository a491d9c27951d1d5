"""`sluice dashboard`: a live, read-only page of queues, ranks, progress and artifacts (server.py).

It never writes to the API.
"""
