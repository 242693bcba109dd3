"""Module-level handlers for the sandbox tests (a sandbox process imports them by name)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from conveyor import JobContext


class Numbers(BaseModel):
    values: list[int]


def add_up(payload: Numbers, ctx: JobContext) -> dict[str, int]:
    ctx.progress(50)
    ctx.log(f"adding {len(payload.values)} numbers in pid {os.getpid()}")
    return {"sum": sum(payload.values), "pid": os.getpid()}


async def spin_forever(payload: dict[str, Any]) -> None:
    while True:  # an infinite loop that never yields: only killing the process stops it
        time.sleep(0.01)  # noqa: ASYNC251 (blocking on purpose: a runaway handler)


def hog_memory(payload: dict[str, Any]) -> int:
    blob = bytearray(1024 * 1024 * 1024)  # 1 GiB, over the sandbox's limit
    return len(blob)


def crash(payload: dict[str, Any]) -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def burn_cpu(payload: dict[str, Any]) -> None:
    while True:
        sum(range(10_000))


def _start_sleepers(payload: dict[str, Any]) -> None:
    """Start `payload["count"]` `sleep 60` processes, each pid appended to `payload["pids_file"]` at once."""
    with Path(payload["pids_file"]).open("a") as pids:
        for _ in range(int(payload["count"])):
            pids.write(f"{subprocess.Popen(['sleep', '60']).pid} ")
            pids.flush()


def start_sleepers_and_spin(payload: dict[str, Any]) -> None:
    _start_sleepers(payload)
    while True:  # a runaway handler whose helpers outlive it, unless the sandbox kills its process group
        time.sleep(0.01)


def start_sleepers_and_return(payload: dict[str, Any]) -> str:
    _start_sleepers(payload)
    return "done"  # the sleepers hold stdout open: the sandbox must not wait for them


def try_to_start_processes(payload: dict[str, Any]) -> str:
    try:
        _start_sleepers(payload)
    except BlockingIOError as exc:  # RLIMIT_NPROC: fork() fails with EAGAIN
        return f"refused: {exc}"
    return "all started"


def nproc_limit(payload: dict[str, Any]) -> int:
    return resource.getrlimit(resource.RLIMIT_NPROC)[0]
