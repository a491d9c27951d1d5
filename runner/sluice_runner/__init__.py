"""Sluice's runner: runs one attempt of a TestExecution inside its Job's pod (see cli.py).

Kept import-free so the operator can import `sluice_runner.report` without the runner's steps.
"""
