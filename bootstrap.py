#!/usr/bin/env python3
"""Set up Conveyor in a local virtualenv from locked dependencies, then run it or its tests. Needs only Python 3.11+.

    python3 bootstrap.py up              # install (requirements.txt), then `conveyor up` on the embedded Redis
    python3 bootstrap.py test            # install (requirements-dev.txt), then lint, type-check and run every test
    python3 bootstrap.py lock            # re-resolve both lock files to the newest versions pyproject.toml allows
    python3 bootstrap.py upgrade-check   # try those newest versions in a throwaway venv; report, never fail

Extra arguments are passed on (`python3 bootstrap.py test -k scheduling`, `python3 bootstrap.py up --processes 2`).
Installs are hash-checked (`pip --require-hashes`), so every machine gets the exact files CI tested. The venv is
rebuilt from scratch whenever a lock file changes, and installing is skipped while none has.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
RUN_LOCK = ROOT / "requirements.txt"
DEV_LOCK = ROOT / "requirements-dev.txt"
BUILD_INPUT = ROOT / "requirements-build.in"
RUN_EXTRAS = ("embedded", "otel", "semantic")
DEV_EXTRAS = (*RUN_EXTRAS, "dev")
# What the upgrade check runs beyond lint and types: the layers every other one stands on, in about a minute.
UPGRADE_CHECK_TESTS = ("tests/config", "tests/redis", "tests/queue", "tests/app", "tests/api/test_queries.py")


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 (a clear message for whoever runs it on an old Python)
        print(f"Conveyor needs Python 3.11 or newer; this is {sys.version.split()[0]}.", file=sys.stderr)
        return 2
    commands = {"up": up, "test": test, "lock": lock, "upgrade-check": upgrade_check}
    if not argv or argv[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


def up(args: list[str]) -> int:
    install(RUN_LOCK)
    return run([str(bin_path(VENV, "conveyor")), "up", *args])


def test(pytest_args: list[str]) -> int:
    """Lint, type-check, then run pytest; any failure (or no test run at all) is a non-zero exit."""
    install(DEV_LOCK)
    install_chromium()
    ruff, mypy, python = (str(bin_path(VENV, name)) for name in ("ruff", "mypy", "python"))
    steps = [
        [ruff, "check", "src", "tests", "bench", "bootstrap.py"],
        [ruff, "format", "--check", "src", "tests", "bench", "bootstrap.py"],
        [mypy],
    ]
    for step in steps:
        if (code := run(step)) != 0:
            return code
    return run([python, "-m", "pytest", *parallel(pytest_args), *pytest_args])


def parallel(pytest_args: list[str]) -> list[str]:
    """Two test processes (pytest-xdist), each test file kept on one, unless the arguments choose otherwise.

    Most tests wait on subprocesses, Redis and timers rather than compute, so two processes halve the wall time
    on two cores; the suite is also proven under two CPU hogs, a harsher load than its own second process.
    """
    if any(arg.startswith(("-n", "--numprocesses", "--dist")) or arg == "no:xdist" for arg in pytest_args):
        return []
    return ["-n", "2", "--dist", "loadfile"]


def lock(_: list[str]) -> int:
    """Re-resolve requirements-dev.txt (every extra) and requirements.txt (constrained to the same versions)."""
    install(DEV_LOCK, verify=False)
    uv = str(bin_path(VENV, "uv"))
    common = ["--universal", "--python-version", "3.11", "--generate-hashes", "--upgrade", "--quiet"]
    extras = [f"--extra={extra}" for extra in DEV_EXTRAS]
    code = run([uv, "pip", "compile", "pyproject.toml", rel(BUILD_INPUT), *extras, *common, "-o", rel(DEV_LOCK)])
    if code == 0:
        extras = [f"--extra={extra}" for extra in RUN_EXTRAS]
        constraint = ["--constraint", rel(DEV_LOCK)]
        inputs = ["pyproject.toml", rel(BUILD_INPUT)]
        code = run([uv, "pip", "compile", *inputs, *extras, *constraint, *common, "-o", rel(RUN_LOCK)])
    if code == 0:
        print("lock files refreshed; review `git diff requirements*`, then run `python3 bootstrap.py test`")
    return code


def upgrade_check(_: list[str]) -> int:
    """Install the newest versions pyproject.toml allows into a throwaway venv and report what would break.

    Always exits 0: the report is for whoever refreshes the lock next, and never fails the run that prints it.
    """
    print("upgrade-check: newest allowed versions in a throwaway venv (the lock is not touched)", flush=True)
    with tempfile.TemporaryDirectory(prefix="conveyor-upgrade-check-") as tmp:
        env = Path(tmp) / "venv"
        venv.create(env, with_pip=True)
        pip = [str(bin_path(env, "python")), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        installed = quiet([*pip, "--upgrade", "-e", f".[{','.join(DEV_EXTRAS)}]", "-r", rel(BUILD_INPUT)])
        if installed.returncode != 0:
            report("install", installed)
            return 0
        newer = differing_from_lock(env)
        print(f"upgrade-check: {len(newer)} package(s) at another version than the lock: {', '.join(newer) or 'none'}")
        ruff, mypy, python = (str(bin_path(env, name)) for name in ("ruff", "mypy", "python"))
        steps = {
            "ruff": [ruff, "check", "src", "tests", "bench"],
            "mypy": [mypy],
            "tests": [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *UPGRADE_CHECK_TESTS],
        }
        broken = [name for name, step in steps.items() if report(name, quiet(step)) != 0]
    verdict = f"would break: {', '.join(broken)}" if broken else "nothing breaks"
    print(f"upgrade-check: {verdict} with the newest allowed versions", flush=True)
    return 0


def differing_from_lock(env: Path) -> list[str]:
    """`name locked -> newest` for each package whose installed version differs from the dev lock."""
    locked = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", DEV_LOCK.read_text(), re.MULTILINE))
    locked = {normalize(name): version for name, version in locked.items()}
    listing = quiet([str(bin_path(env, "python")), "-m", "pip", "list", "--format=json", "--exclude-editable"])
    newer = []
    for package in json.loads(listing.stdout or "[]"):
        name, version = normalize(package["name"]), package["version"]
        if name in locked and locked[name] != version:
            newer.append(f"{name} {locked[name]} -> {version}")
    return newer


def report(step: str, result: subprocess.CompletedProcess[str]) -> int:
    """Print one step's verdict, with the tail of its output when it failed (indented, so no test runner's
    closing line is mistaken for the main run's)."""
    print(f"upgrade-check: {step}: {'ok' if result.returncode == 0 else 'FAILS'}", flush=True)
    if result.returncode != 0:
        for line in (result.stdout + result.stderr).strip().splitlines()[-25:]:
            print(f"    | {line}")
    return result.returncode


def install(lock_file: Path, *, verify: bool = True) -> None:
    """Make .venv hold exactly `lock_file`'s packages (hash-checked) and the project, editable.

    The dev lock is a superset of the run lock at the same versions, so a venv made for tests also serves `up`.
    When a lock file changes, the venv is rebuilt rather than patched, so nothing stale is left in it.
    """
    stamp = VENV / ".conveyor-installed"
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in (RUN_LOCK, DEV_LOCK, ROOT / "pyproject.toml")))
    try:
        state = json.loads(stamp.read_text())
    except (OSError, ValueError):
        state = {}
    if state.get("digest") != digest.hexdigest():
        if VENV.exists():
            print("the lock files changed: rebuilding .venv", flush=True)
            shutil.rmtree(VENV)
        state = {"digest": digest.hexdigest(), "locks": []}
    if rel(lock_file) in state["locks"] or rel(DEV_LOCK) in state["locks"]:
        return
    if not bin_path(VENV, "python").exists():
        print("creating .venv", flush=True)
        venv.create(VENV, with_pip=True)
    print(f"installing {rel(lock_file)} (hash-checked) and conveyor into .venv", flush=True)
    pip = [str(bin_path(VENV, "python")), "-m", "pip", "--disable-pip-version-check"]
    check([*pip, "install", "-q", "--require-hashes", "-r", str(lock_file)])
    check([*pip, "install", "-q", "--no-deps", "--no-build-isolation", "-e", "."])
    if verify and subprocess.call([*pip, "check"], cwd=ROOT) != 0:
        sys.exit("the lock files do not match pyproject.toml: run `python3 bootstrap.py lock`")
    state["locks"].append(rel(lock_file))
    stamp.write_text(json.dumps(state))


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


def bin_path(env: Path, name: str) -> Path:
    return env / ("Scripts" if os.name == "nt" else "bin") / name


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def run(args: list[str]) -> int:
    print("+", " ".join([Path(args[0]).name, *args[1:]]), flush=True)
    return subprocess.call(args, cwd=ROOT)


def quiet(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)


def check(args: list[str], env: dict[str, str] | None = None) -> None:
    if subprocess.call(args, cwd=ROOT, env=env) != 0:
        sys.exit(f"failed: {' '.join(args)}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
