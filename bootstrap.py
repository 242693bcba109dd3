#!/usr/bin/env python3
"""Set up Conveyor in a local virtualenv, then run it or its tests. Needs only Python 3.11+.

    python3 bootstrap.py up      # install, then `conveyor up` on the embedded Redis
    python3 bootstrap.py test    # install with dev tools, then lint, type-check and run the whole test suite

Extra arguments are passed on (`python3 bootstrap.py test -k scheduling`, `python3 bootstrap.py up --processes 2`).
Installation is skipped when pyproject.toml has not changed since the last one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
RUN_EXTRAS = "embedded,otel"
TEST_EXTRAS = RUN_EXTRAS + ",dev"


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 (a clear message for whoever runs it on an old Python)
        print(f"Conveyor needs Python 3.11 or newer; this is {sys.version.split()[0]}.", file=sys.stderr)
        return 2
    if not argv or argv[0] not in ("up", "test"):
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    install(TEST_EXTRAS if command == "test" else RUN_EXTRAS)
    if command == "up":
        return run([str(BIN / "conveyor"), "up", *rest])
    install_chromium()
    return test(rest)


def install(extras: str) -> None:
    """Create the virtualenv and install the project with `extras`, unless already done for this pyproject."""
    if not (BIN / "python").exists():
        print("creating .venv", flush=True)
        venv.create(VENV, with_pip=True)
    stamp = VENV / ".conveyor-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    print(f"installing conveyor[{extras}] into .venv", flush=True)
    check([*pip, "--upgrade", "pip"])
    check([*pip, "-e", f".[{extras}]"])
    stamp.write_text(digest)


def install_chromium() -> None:
    """The dashboard's browser tests drive the system's Chromium (Playwright's own download is not used)."""
    if any(shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")):
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        print("installing chromium (for the dashboard's browser tests)", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        check(["apt-get", "update", "-qq"], env)
        check(["apt-get", "install", "-y", "-qq", "chromium"], env)
    else:
        print("note: no Chromium found; install it to run the dashboard's browser tests", file=sys.stderr)


def test(pytest_args: list[str]) -> int:
    """Lint, type-check, then run pytest; any failure (or no test run at all) is a non-zero exit."""
    steps = [
        [str(BIN / "ruff"), "check", "src", "tests", "bench"],
        [str(BIN / "ruff"), "format", "--check", "src", "tests", "bench"],
        [str(BIN / "mypy")],
    ]
    for step in steps:
        if (code := run(step)) != 0:
            return code
    return run([str(BIN / "python"), "-m", "pytest", *pytest_args])


def run(args: list[str]) -> int:
    print("+", " ".join([Path(args[0]).name, *args[1:]]), flush=True)
    return subprocess.call(args, cwd=ROOT)


def check(args: list[str], env: dict[str, str] | None = None) -> None:
    if subprocess.call(args, cwd=ROOT, env=env) != 0:
        sys.exit(f"failed: {' '.join(args)}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
