"""The supervisor keeps N worker processes running, restarts dead ones, gives up on ones that cannot start,
and stops them all gracefully. Children here are tiny Python scripts; `tests/cli/test_worker.py` runs it
with real `conveyor worker` processes."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor.worker.supervisor import Supervisor, SupervisorConfig

# Records its pid in DIR, then serves until SIGTERM; on SIGTERM it takes STOP_S seconds to stop (a graceful
# shutdown), records that it stopped, and exits 0. With IGNORE_TERM it ignores SIGTERM altogether.
CHILD = """
import os, pathlib, signal, sys, time
folder = pathlib.Path(sys.argv[1]); stop_s = float(sys.argv[2]); exit_after = float(sys.argv[3])
def stop(signum, frame):
    time.sleep(stop_s)
    (folder / f"stopped-{os.getpid()}").touch()
    sys.exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN if stop_s < 0 else stop)
(folder / f"started-{os.getpid()}").touch()
if exit_after >= 0:
    time.sleep(exit_after)
    sys.exit(3)
while True:
    time.sleep(0.05)
"""


def child(folder: Path, *, stop_s: float = 0.0, exit_after: float = -1) -> list[str]:
    return [sys.executable, "-c", CHILD, str(folder), str(stop_s), str(exit_after)]


def pids(folder: Path, kind: str = "started") -> set[int]:
    return {int(path.name.split("-")[1]) for path in folder.glob(f"{kind}-*")}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)


class Running:
    """A supervisor running in a background thread (signal handlers need the main thread; not used here)."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.code = self.supervisor.run()

    def stop(self, timeout: float = 30) -> int | None:
        self.supervisor.request_stop()
        return self.join(timeout)

    def join(self, timeout: float = 30) -> int | None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the supervisor did not return"
        return self.code


@pytest.fixture
def supervise() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(command: list[str], **config: float) -> Running:
        running = Running(Supervisor(command, SupervisorConfig(**config)))  # type: ignore[arg-type]
        started.append(running)
        return running

    yield start
    for running in started:
        if running.thread.is_alive():
            running.stop()


def test_a_child_that_dies_is_restarted_with_a_log_line(
    supervise: Callable[..., Running], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="conveyor.worker.supervisor")
    running = supervise(child(tmp_path), processes=2, restart_delay_s=0.1, startup_window_s=0.5)
    wait_for(lambda: len(pids(tmp_path)) == 2)
    victim = min(pids(tmp_path))
    time.sleep(0.6)  # past the startup window: this is a crash of a running worker, not a failed start
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(pids(tmp_path)) == 3)
    assert sorted(running.supervisor.pids) == sorted(pids(tmp_path) - {victim})
    assert any(f"(pid {victim}) exited unexpectedly with code -9" in r.getMessage() for r in caplog.records)
    assert running.stop() == 0


def test_stop_forwards_sigterm_and_waits_for_every_child_to_finish_its_shutdown(
    supervise: Callable[..., Running], tmp_path: Path
) -> None:
    running = supervise(child(tmp_path, stop_s=0.5), processes=3)
    wait_for(lambda: len(pids(tmp_path)) == 3)
    assert running.stop() == 0
    assert pids(tmp_path, "stopped") == pids(tmp_path)  # each child ran its graceful shutdown to the end
    assert not any(alive(pid) for pid in pids(tmp_path))


def test_a_child_that_ignores_the_stop_signal_is_killed_after_the_stop_timeout(
    supervise: Callable[..., Running], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    running = supervise(child(tmp_path, stop_s=-1), processes=1, stop_timeout_s=0.5)
    wait_for(lambda: len(pids(tmp_path)) == 1)
    assert running.stop() == 0
    (pid,) = pids(tmp_path)
    assert not alive(pid)
    assert any("did not stop in time; killing it" in r.getMessage() for r in caplog.records)


def test_children_that_keep_failing_to_start_make_the_supervisor_give_up_with_their_exit_code(
    supervise: Callable[..., Running], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    running = supervise(child(tmp_path, exit_after=0), processes=2, restart_delay_s=0.01, max_start_failures=3)
    assert running.join() == 3
    assert len(pids(tmp_path)) <= 6  # no more than 3 starts per slot
    assert any("failed to start 3 times in a row" in r.getMessage() for r in caplog.records)


def test_a_child_that_ran_for_a_while_before_dying_is_restarted_without_giving_up(
    supervise: Callable[..., Running], tmp_path: Path
) -> None:
    running = supervise(
        child(tmp_path, exit_after=0.3), processes=1, restart_delay_s=0.01, startup_window_s=0.1, max_start_failures=2
    )
    wait_for(lambda: len(pids(tmp_path)) >= 4)
    assert running.thread.is_alive()
    assert running.stop() == 0


def test_signal_handlers_are_restored_when_the_supervisor_returns(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    supervisor = Supervisor(child(tmp_path, exit_after=0), SupervisorConfig(1, max_start_failures=1))
    supervisor.install_signal_handlers()
    assert signal.getsignal(signal.SIGTERM) != before
    assert supervisor.run() == 3
    assert signal.getsignal(signal.SIGTERM) == before
