"""The application object that ties settings, queues, handlers and workers together."""

from conveyor.app.conveyor import Conveyor, NotConnectedError

__all__ = ["Conveyor", "NotConnectedError"]
