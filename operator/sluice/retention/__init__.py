"""History limits: which finished executions to delete (`policy`, pure) and deleting them (`deleter`)."""
