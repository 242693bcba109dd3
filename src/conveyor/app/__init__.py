"""The application object that ties settings, queues, handlers and workers together."""

from conveyor.app.conveyor import Conveyor, NotConnectedError
from conveyor.app.sync import SyncConveyor

__all__ = ["Conveyor", "NotConnectedError", "SyncConveyor"]
