"""The planner: pure decisions over the cache's view (see `plan.py`)."""
from .model import Context, CreateAttempt, Memo, Plan, StatusWrite
from .plan import plan

__all__ = ["Context", "CreateAttempt", "Memo", "Plan", "StatusWrite", "plan"]
