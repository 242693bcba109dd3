"""Return codes of BullMQ's scripts, as typed exceptions."""

from __future__ import annotations

from typing import Any

from conveyor.errors import ConveyorError


class ScriptError(ConveyorError):
    """A BullMQ script refused a state change; the subclass says why."""

    code = 0

    def __init__(self, job_id: str, command: str) -> None:
        super().__init__(f"{command} refused for job {job_id!r}: {self.__doc__}")
        self.job_id = job_id
        self.command = command


class JobMissingError(ScriptError):
    """The job does not exist (removed, or never added)."""

    code = -1


class LockMissingError(ScriptError):
    """The job's lock expired: another worker may own it now, so this worker must not change it."""

    code = -2


class JobNotInStateError(ScriptError):
    """The job is not in the state this operation needs (e.g. not active, not delayed)."""

    code = -3


class PendingDependenciesError(ScriptError):
    """The job still has children that have not finished."""

    code = -4


class ParentMissingError(ScriptError):
    """The parent job named by this job does not exist."""

    code = -5


class LockMismatchError(ScriptError):
    """The job is locked by another worker's token: this worker lost it and must not change it."""

    code = -6


class QueueNotPausedError(ScriptError):
    """The queue must be paused for this operation."""


class QueueHasActiveJobsError(ScriptError):
    """The queue has active jobs; wait for them, cancel them, or force the operation."""


_BY_CODE: dict[int, type[ScriptError]] = {
    cls.code: cls
    for cls in (
        JobMissingError,
        LockMissingError,
        JobNotInStateError,
        PendingDependenciesError,
        ParentMissingError,
        LockMismatchError,
    )
}


def raise_for_code(result: Any, *, job_id: str, command: str) -> None:
    """Raise the typed error for a negative integer return code; other results pass."""
    if isinstance(result, int) and result < 0:
        if command == "obliterate":
            raise (QueueNotPausedError if result == -1 else QueueHasActiveJobsError)(job_id, command)
        raise _BY_CODE.get(result, ScriptError)(job_id, command)
