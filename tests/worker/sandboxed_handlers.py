"""Module-level handlers for the sandbox tests (a sandbox process imports them by name)."""

from __future__ import annotations

import os
import signal
import time
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
