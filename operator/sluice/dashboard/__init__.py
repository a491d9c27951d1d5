"""`sluice dashboard`: a live page of queues, ranks, progress, failures, consoles and artifacts (server.py).

It reads with the user's kubeconfig; its only writes are the actions the user's RBAC allows
(cancel, rerun, pause/resume: actions.py), each confirmed on the page.
"""
