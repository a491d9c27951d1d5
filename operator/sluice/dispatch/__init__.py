"""The dispatcher: the loop (`loop.py`), the watch events into its view (`intake.py`), the API
calls that carry plans out (`actuators.py`), re-lists (`kube/relist.py`) and the subsystems
plugged into the loop (`queue_status.py`)."""
from .actuators import status_patch
from .loop import Dispatcher, Subsystem

__all__ = ["Dispatcher", "Subsystem", "status_patch"]
