"""The `sluice` command: `sluice operator` runs the operator; `queue`, `stats`, `run`, `cancel`,
`logs` and `artifacts` are the user's tools (see `main.py` and docs/cli.md)."""
