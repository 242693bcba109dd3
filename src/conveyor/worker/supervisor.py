"""A supervisor of N worker processes: starts them, restarts one that dies, stops them all gracefully.

Each worker is a separate OS process running a command (the CLI passes `python -m conveyor worker
--processes 1 ...`), not a `multiprocessing` child. A fresh interpreter shares nothing with the supervisor:
no inherited event loop, sockets, locks or threads (the fork hazards), nothing to pickle (the app is
re-imported from its `--app` spec, exactly as a worker started by hand), and each child is the same program,
with the same signal handling and exit codes, that an operator runs and a test exercises.

The supervisor itself is synchronous and small: it polls its children a few times a second.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True)
class SupervisorConfig:
    """How many workers to run and how to treat their exits.

    Attributes:
        processes: how many worker processes to keep running.
        stop_timeout_s: how long to wait for the children after forwarding a stop signal (give them their
            shutdown grace period plus a margin); stragglers are then killed and their jobs recovered by
            the stalled-job check.
        restart_delay_s: wait before restarting a child that died; doubles with each failed start.
        max_restart_delay_s: the longest wait before a restart.
        startup_window_s: a child that exits sooner than this after its start counts as failing to start.
        max_start_failures: consecutive failed starts of one child after which the supervisor gives up.
        poll_interval_s: how often the children are checked.
    """

    processes: int
    stop_timeout_s: float = 45.0
    restart_delay_s: float = 0.5
    max_restart_delay_s: float = 10.0
    startup_window_s: float = 5.0
    max_start_failures: int = 5
    poll_interval_s: float = 0.2


@dataclass
class _Slot:
    """One of the N worker places; its process is replaced when it dies."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float = 0.0


class Supervisor:
    """Keeps `config.processes` copies of `command` running until stopped.

    `run()` returns 0 after a requested stop (SIGTERM/SIGINT, forwarded to every child, which then shuts
    down gracefully), or the failing child's exit code (1 if it had none) when a child failed to start
    `max_start_failures` times in a row.
    """

    def __init__(
        self,
        command: Sequence[str],
        config: SupervisorConfig,
        *,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if config.processes < 1:
            raise ValueError("a supervisor needs at least one process")
        self.command = list(command)
        self.config = config
        self.env = dict(env) if env is not None else None
        self._clock = clock
        self._slots = [_Slot(index) for index in range(config.processes)]
        self._stop = threading.Event()
        self._stop_signal: int = signal.SIGTERM
        self._exit_code = 0
        self._previous_handlers: dict[int, Any] = {}

    @property
    def pids(self) -> list[int]:
        """The pids of the children currently running."""
        return [slot.process.pid for slot in self._slots if slot.process is not None and slot.process.poll() is None]

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop: forward `signum` to every child and wait for them (safe from signal handlers and threads)."""
        self._stop_signal = signum
        self._stop.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the supervisor (main thread only); `run()` restores the old handlers."""
        for sig in STOP_SIGNALS:
            self._previous_handlers[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.request_stop(signum)

    def run(self) -> int:
        """Start the children and supervise them until stopped; returns the exit code for the process."""
        try:
            for slot in self._slots:
                self._start(slot)
            while not self._stop.wait(self.config.poll_interval_s):
                for slot in self._slots:
                    self._check(slot)
        finally:
            self._stop_children()
            for sig, handler in self._previous_handlers.items():
                signal.signal(sig, handler)
            self._previous_handlers.clear()
        return self._exit_code

    # --- children -------------------------------------------------------------------------------------

    def _start(self, slot: _Slot) -> None:
        slot.started_at = self._clock()
        try:
            slot.process = subprocess.Popen(self.command, env=self.env, stdin=subprocess.DEVNULL)
        except OSError as exc:
            log.error("worker process %d could not be started: %s", slot.index, exc)
            slot.process = None
            self._schedule_restart(slot, exit_code=1)
            return
        log.info("worker process %d started (pid %d)", slot.index, slot.process.pid)

    def _check(self, slot: _Slot) -> None:
        now = self._clock()
        if slot.process is None:
            if now >= slot.restart_at and not self._stop.is_set():
                self._start(slot)
            return
        code = slot.process.poll()
        if code is None:
            if slot.failures and now - slot.started_at >= self.config.startup_window_s:
                slot.failures = 0  # it came up: the next death starts a fresh count
            return
        if self._stop.is_set():
            return
        pid, slot.process = slot.process.pid, None
        log.warning(
            "worker process %d (pid %d) exited unexpectedly with code %d after %.1f s",
            slot.index,
            pid,
            code,
            now - slot.started_at,
        )
        self._schedule_restart(slot, exit_code=code)

    def _schedule_restart(self, slot: _Slot, *, exit_code: int) -> None:
        quick = self._clock() - slot.started_at < self.config.startup_window_s
        slot.failures = slot.failures + 1 if quick else 0
        if slot.failures >= self.config.max_start_failures:
            log.error(
                "worker process %d failed to start %d times in a row (last exit code %d); stopping all workers",
                slot.index,
                slot.failures,
                exit_code,
            )
            self._exit_code = exit_code if exit_code > 0 else 1
            self._stop.set()
            return
        delay = min(self.config.restart_delay_s * 2 ** max(slot.failures - 1, 0), self.config.max_restart_delay_s)
        slot.restart_at = self._clock() + delay
        log.warning("restarting worker process %d in %.1f s", slot.index, delay)

    def _stop_children(self) -> None:
        running = [slot.process for slot in self._slots if slot.process is not None and slot.process.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
                process.send_signal(self._stop_signal)
        if running:
            log.info("waiting up to %.0f s for %d worker process(es) to stop", self.config.stop_timeout_s, len(running))
        deadline = self._clock() + self.config.stop_timeout_s
        for process in running:
            try:
                process.wait(max(0.0, deadline - self._clock()))
            except subprocess.TimeoutExpired:
                log.warning("worker process (pid %d) did not stop in time; killing it", process.pid)
                process.kill()
                process.wait()
        for slot in self._slots:
            if slot.process is not None:
                slot.process.wait()  # reap children that had already exited
            slot.process = None
