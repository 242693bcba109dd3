"""The `conveyor` process imports with the cyclic collector paused, then freezes what it made and turns the
collector back on (`conveyor.cli.startup`); code that runs the Typer app in its own process keeps its collector."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.cli.conftest import clean_environment

# Collector passes are counted until the start-up objects are frozen (the command's own run may collect).
_COUNT = """
import gc, json, sys
passes = 0
def count(phase, info):
    global passes
    passes += phase == "start" and not gc.get_freeze_count()
gc.callbacks.append(count)
"""
_REPORT = """
print(json.dumps({"code": code, "enabled": gc.isenabled(), "frozen": gc.get_freeze_count(), "passes": passes}))
"""
_ENTRY = (
    _COUNT
    + """
import conveyor.cli.entry
sys.argv = ["conveyor", "add", "no-such-queue", "job", "{}"]  # a command that runs and fails without Redis
try:
    conveyor.cli.entry.main()
except SystemExit as exc:
    code = exc.code
"""
    + _REPORT
)
_HOSTED = (
    _COUNT
    + """
from typer.testing import CliRunner
from conveyor.cli.main import cli
code = CliRunner().invoke(cli, ["add", "no-such-queue", "job", "{}"]).exit_code
"""
    + _REPORT
)


def _run(script: str) -> dict[str, int]:
    result = subprocess.run(
        [sys.executable, "-c", script], env=clean_environment(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, int] = json.loads(result.stdout.splitlines()[-1])
    return report


def test_the_command_starts_with_the_collector_paused_and_runs_with_it_on() -> None:
    report = _run(_ENTRY)
    assert report["code"] == 2  # the command ran (and refused the unknown queue)
    assert report["enabled"]
    assert report["frozen"] > 10_000  # the modules, classes and functions of the start, out of the collector's way
    # A few passes before `main` runs (the entry module's own imports); with the collector on, about 140.
    assert report["passes"] < 10, report


def test_a_process_that_runs_the_typer_app_itself_keeps_its_collector() -> None:
    report = _run(_HOSTED)
    assert report["code"] == 2
    assert report["enabled"]
    assert report["frozen"] == 0
    assert report["passes"] > 50, report  # it collected while it imported, as any import does


def test_importing_the_package_imports_the_app_only_when_a_name_is_used() -> None:
    script = (
        "import sys, conveyor\n"
        "before = 'conveyor.app' in sys.modules\n"
        "from conveyor import Conveyor, load_settings\n"
        "print(before, 'conveyor.app' in sys.modules, all(hasattr(conveyor, n) for n in conveyor.__all__))"
    )
    result = subprocess.run([sys.executable, "-c", script], env=clean_environment(), capture_output=True, text=True)
    assert result.stdout.split() == ["False", "True", "True"], result.stderr
