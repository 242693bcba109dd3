"""Sandboxed handlers: each attempt runs in a child process with CPU-time, memory and wall-time limits.

A crash, a leak or an infinite loop kills only the child and fails that attempt; cancelling the job kills the
child at once. The worker (and its lock renewal) keeps running in the parent. This is fault isolation, not a
security boundary: the child runs as the same user with the same files and network.

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
import resource
import sys
import threading
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


class SandboxCrashedError(JobFailureError):
    """The sandboxed handler's process died (killed by a signal, out of memory or CPU time, or exited)."""


class SandboxedHandlerError(JobFailureError):
    """The sandboxed handler raised; the message carries its error and stack trace from the child."""


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
            outcome = await _read_answers(proc.stdout, ctx)
            await proc.wait()
    except TimeoutError:
        raise JobTimeoutError(f"sandboxed attempt killed after {min(walls):.3f} s") from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()  # timeout, cancellation or a broken answer: the child goes, the worker stays
            await proc.wait()
    return _result(outcome, proc.returncode, (await errors)[-STDERR_TAIL:].decode(errors="replace"))


async def _read_answers(stdout: asyncio.StreamReader, ctx: JobContext) -> dict[str, Any]:
    outcome: dict[str, Any] = {}
    async for line in stdout:
        message = json.loads(line)
        if "progress" in message:
            ctx.progress(message["progress"])
        elif "log" in message:
            ctx.log(message["log"])
        else:
            outcome = message
    return outcome


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
        self.cancelled = threading.Event()
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
