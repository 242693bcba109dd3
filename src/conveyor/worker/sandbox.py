"""Sandboxed handlers: each attempt runs in a child process with CPU-time, memory and wall-time limits.

A crash, a leak or an infinite loop kills only the child and fails that attempt; cancelling the job kills the
child at once. The worker (and its lock renewal) keeps running in the parent. This is fault isolation, not a
security boundary: the child runs as the same user with the same files and network.

The child leads a process group of its own, and the attempt ends by killing the whole group: processes the
handler started (a `subprocess.Popen`, an `os.fork`) do not outlive the attempt, whether it answered, timed out,
crashed or was cancelled. Only a process that leaves the group on purpose (`setsid`, a daemon) escapes.
`Sandbox(max_processes=N)` caps the group: the parent counts its processes and kills the group when there are
more than N (this works for every user, root included), and the child's RLIMIT_NPROC stops a fork bomb in the
kernel where the kernel enforces it (not for root, which bypasses it).

The parent sends one JSON request on the child's stdin; the child answers with JSON lines on stdout:
`{"progress": …}`, `{"log": "…"}`, then `{"result": …}` or `{"error": {"type", "message", "trace"}}`.
Run as `python -m conveyor.worker.sandbox` (only by `run_sandboxed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import os
import resource
import signal
import sys
import traceback
from dataclasses import asdict, dataclass
from typing import Any

from conveyor.errors import ConveyorError
from conveyor.worker.context import JobContext, JobInfo
from conveyor.worker.errors import JobFailureError, JobTimeoutError

STDERR_TAIL = 2000


@dataclass(frozen=True)
class Sandbox:
    """Limits of a sandboxed handler's child process (None: no limit of that kind)."""

    cpu_s: int | None = None
    memory_mb: int | None = None
    wall_s: float | None = None
    max_processes: int | None = None
    """The most processes the attempt may have at once, its own included (see the module docstring)."""


class SandboxCrashedError(JobFailureError):
    """The sandboxed handler's process died (killed by a signal, out of memory or CPU time, or exited)."""


class SandboxedHandlerError(JobFailureError):
    """The sandboxed handler raised; the message carries its error and stack trace from the child."""


class SandboxProcessLimitError(JobFailureError):
    """The sandboxed handler started more processes than `Sandbox.max_processes`; its process group was killed."""


class SandboxSetupError(ConveyorError):
    """A handler that cannot be sandboxed (the child process must be able to import it)."""


def importable_name(obj: Any) -> tuple[str, str]:
    """(module, qualified name) under which a child process can import `obj`, or a clear error."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", "")
    if not module or module == "__main__" or "<locals>" in qualname:
        raise SandboxSetupError(
            f"{qualname or obj!r} cannot be sandboxed: define it at the top level of an importable module "
            "(the sandbox process imports it by name)."
        )
    return module, qualname


async def run_sandboxed(
    func: Any, model: Any, data: Any, ctx: JobContext, limits: Sandbox, budget_s: float | None
) -> Any:
    """Run one attempt of `func` in a child process and return its result (or raise why it failed)."""
    request = {
        "func": importable_name(func),
        "model": importable_name(model) if model is not None else None,
        "data": data,
        "job": asdict(ctx.job),
        "limits": asdict(limits),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "conveyor.worker.sandbox",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group, killed as a whole when the attempt ends
    )  # fmt: skip
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    errors = asyncio.ensure_future(proc.stderr.read())  # drained alongside, so a chatty child never blocks
    proc.stdin.write(json.dumps(request).encode() + b"\n")
    await proc.stdin.drain()
    proc.stdin.close()
    walls = [w for w in (limits.wall_s, budget_s) if w is not None]
    try:
        async with asyncio.timeout(min(walls) if walls else None):
            outcome = await _supervised(proc, ctx, limits.max_processes)
    except TimeoutError:
        raise JobTimeoutError(f"sandboxed attempt killed after {min(walls):.3f} s") from None
    finally:
        kill_group(proc.pid)  # whatever the outcome: the handler's own processes go with it, the worker stays
        await proc.wait()
        stderr = await _tail(errors)
    return _result(outcome, proc.returncode, stderr)


def kill_group(pgid: int) -> None:
    """SIGKILL every process of the group `pgid` (a sandbox child and what it started); none left is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def group_size(pgid: int) -> int:
    """How many live processes are in the group `pgid` (Linux' /proc; 0 where there is no /proc)."""
    count = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and _group_of(entry.name) == pgid:
                count += 1
    return count


def _group_of(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()  # after "(comm)": state, ppid, pgrp, ...
    except (OSError, IndexError):
        return None  # gone meanwhile
    return None if fields[0] == b"Z" else int(fields[2])  # a zombie is dead already, only not yet reaped


async def _supervised(proc: asyncio.subprocess.Process, ctx: JobContext, max_processes: int | None) -> dict[str, Any]:
    """The child's final answer; with `max_processes`, its group is counted meanwhile and a surplus fails it."""
    assert proc.stdout is not None
    reading = asyncio.ensure_future(_read_answers(proc.stdout, ctx))
    if max_processes is None:
        return await reading
    policing = asyncio.ensure_future(_police(proc.pid, max_processes))
    try:
        await asyncio.wait([reading, policing], return_when=asyncio.FIRST_COMPLETED)
        if policing.done():
            policing.result()  # raises SandboxProcessLimitError
        return reading.result()
    finally:
        reading.cancel()
        policing.cancel()


async def _police(pgid: int, cap: int, interval_s: float = 0.05) -> None:
    while True:
        count = group_size(pgid)
        if count > cap:
            kill_group(pgid)
            raise SandboxProcessLimitError(
                f"sandboxed handler had {count} processes; the limit is {cap} (Sandbox.max_processes): its "
                "process group was killed. Raise max_processes, or start fewer processes at once."
            )
        await asyncio.sleep(interval_s)


async def _tail(errors: asyncio.Future[bytes]) -> str:
    """The end of the child's stderr (a grandchild killed with the group closed its copy too)."""
    try:
        return (await asyncio.wait_for(errors, 5))[-STDERR_TAIL:].decode(errors="replace")
    except TimeoutError:  # a process outside the group (setsid) still holds the pipe: do not wait for it
        errors.cancel()
        return ""


async def _read_answers(stdout: asyncio.StreamReader, ctx: JobContext) -> dict[str, Any]:
    """Progress and logs until the final answer (`result` or `error`), or until the child closes stdout."""
    async for line in stdout:
        message = json.loads(line)
        if "progress" in message:
            ctx.progress(message["progress"])
        elif "log" in message:
            ctx.log(message["log"])
        else:
            return dict(message)  # not waiting for EOF: a process the handler started may hold stdout open
    return {}


def _result(outcome: dict[str, Any], code: int | None, stderr: str) -> Any:
    if "result" in outcome:
        return outcome["result"]
    if "error" in outcome:
        error = outcome["error"]
        raise SandboxedHandlerError(f"{error['type']}: {error['message']}\n{error['trace']}")
    how = f"killed by signal {-code}" if code is not None and code < 0 else f"exited with status {code}"
    raise SandboxCrashedError(f"sandboxed handler process {how} without an answer; stderr: {stderr.strip()[-500:]}")


# --- the child process ------------------------------------------------------------------------------------


class _ChildContext(JobContext):
    """The JobContext of a sandboxed handler: progress and logs travel to the parent as JSON lines."""

    def __init__(self, info: JobInfo) -> None:  # no Redis here: everything goes through the parent
        self.job = info
        self._cancelled = None
        self.cancel_requested = False

    def progress(self, value: int | float | dict[str, Any]) -> None:
        _answer({"progress": value})

    def log(self, line: str) -> None:
        _answer({"log": str(line)})


def _answer(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _apply_limits(limits: dict[str, Any]) -> None:
    if limits.get("cpu_s"):
        resource.setrlimit(resource.RLIMIT_CPU, (int(limits["cpu_s"]), int(limits["cpu_s"]) + 1))
    if limits.get("memory_mb"):
        size = int(limits["memory_mb"]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    if limits.get("max_processes"):
        # RLIMIT_NPROC counts every task (process or thread) of the real user, not of this group: allow the
        # ones the user runs already plus the cap, so that a fork bomb fails in fork() (root bypasses it)
        allowed = tasks_of_user(os.getuid()) + int(limits["max_processes"])
        resource.setrlimit(resource.RLIMIT_NPROC, (allowed, allowed))


def tasks_of_user(uid: int) -> int:
    """How many tasks (processes and threads: what RLIMIT_NPROC counts) the user `uid` runs (Linux' /proc)."""
    count = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir("/proc"):
            with contextlib.suppress(OSError):
                if entry.name.isdigit() and entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
    return count


def _load(name: list[str]) -> Any:
    target: Any = importlib.import_module(name[0])
    for part in name[1].split("."):
        target = getattr(target, part)
    return target


def _child_main() -> None:
    request = json.loads(sys.stdin.readline())
    _apply_limits(request["limits"])
    try:
        func = _load(request["func"])
        payload = request["data"]
        if request["model"] is not None:
            payload = _load(request["model"]).model_validate(payload)
        ctx = _ChildContext(JobInfo(**request["job"]))
        takes_context = len(inspect.signature(func).parameters) >= 2
        args = (payload, ctx) if takes_context else (payload,)
        result = asyncio.run(func(*args)) if inspect.iscoroutinefunction(func) else func(*args)
        _answer({"result": result})
    except BaseException as exc:  # report everything, MemoryError included, then leave
        trace = "".join(traceback.format_exception(exc))
        _answer({"error": {"type": type(exc).__name__, "message": str(exc), "trace": trace}})


if __name__ == "__main__":
    _child_main()
