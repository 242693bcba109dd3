"""The `conveyor` process's start-up: its imports run with the cyclic garbage collector paused.

A command imports Typer, Conveyor, redis-py and pydantic: some 50,000 objects that live as long as the process.
The collector's passes over them while they are made take about a tenth of the start (30 ms of 300 on a 2-core
machine, at every `conveyor worker`) and free almost nothing. The entry point (`conveyor.cli.entry`) pauses the
collector before those imports; once the command is resolved (its module imported) and before it runs,
`resume_collector` moves what exists out of the collector's way (`gc.freeze`) and turns it back on. Only the
`conveyor` process itself does this: code that imports `conveyor.cli` (tests, a host app running the Typer app)
keeps its collector as it is.
"""

from __future__ import annotations

import gc


class _Collector:
    paused = False  # by `pause_collector`, until `resume_collector`


def pause_collector() -> None:
    """Turn the collector off for the start-up imports (if it is on)."""
    if gc.isenabled():
        gc.disable()
        _Collector.paused = True


def resume_collector() -> None:
    """Freeze what the start made and turn the collector back on, if `pause_collector` paused it (else nothing)."""
    if _Collector.paused:
        _Collector.paused = False
        gc.freeze()
        gc.enable()
