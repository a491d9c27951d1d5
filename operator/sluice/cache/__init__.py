"""The operator's cache: the view of the cluster (`view.py`) and what the operator has asserted
but not yet seen back (`assumptions.py`)."""
