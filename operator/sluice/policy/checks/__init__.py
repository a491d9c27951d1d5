"""The semantic checks of a TestExecution, one module per area; `policy/validate.py` runs them all.

Why a package: each area (the Kubernetes grammar, the test source, the runner pod, the execution's
own fields) is a list of sentences that say what to fix, readable and testable alone. Every check
is pure: it never calls the API, never reads the clock or the environment, and never changes the
spec it is given.
"""
