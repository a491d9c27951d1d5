"""Kubernetes edges: manifests the operator creates, and the thin async API client."""
