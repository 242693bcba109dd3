"""Checks the offline `fix` task can run: Python's own compiler, ruff when installed, and tree-sitter's parse
errors for every language with a grammar. Ruff's safe fixes are offered as a diff; the file is never changed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUFF_TIMEOUT_S = 30.0
MAX_DIFF_CHARS = 20_000


@dataclass
class LintReport:
    """What the checks found and which checks ran (and which could not)."""

    findings: list[dict[str, Any]] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    diff: str = ""


def find_ruff() -> str | None:
    """The ruff executable: beside this Python first (a virtualenv's bin), then on PATH."""
    beside = Path(sys.executable).parent / "ruff"
    if beside.is_file():
        return str(beside)
    return shutil.which("ruff")


def check_python_compiles(source: str, path: str, report: LintReport) -> None:
    """Compile the source as `python -m py_compile` would (without writing bytecode)."""
    report.tools.append("python compile")
    try:
        compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        report.findings.append(
            {"line": exc.lineno or 1, "code": "E999", "tool": "python", "message": f"SyntaxError: {exc.msg}"}
        )
    except ValueError as exc:  # e.g. NUL bytes
        report.findings.append({"line": 1, "code": "E902", "tool": "python", "message": str(exc)})


def run_ruff(path: Path, report: LintReport) -> None:
    """Ruff's findings (with the project's configuration, found from the file's folder) and its fix diff."""
    ruff = find_ruff()
    if ruff is None:
        report.unavailable.append("ruff (not installed)")
        return
    base = [ruff, "check", "--no-cache", "--exit-zero", "--quiet"]
    try:
        listed = subprocess.run(
            [*base, "--output-format", "json", str(path)],
            capture_output=True, text=True, timeout=RUFF_TIMEOUT_S, cwd=path.parent, check=False,
        )  # fmt: skip
        diffed = subprocess.run(
            [*base, "--fix", "--diff", str(path)],
            capture_output=True, text=True, timeout=RUFF_TIMEOUT_S, cwd=path.parent, check=False,
        )  # fmt: skip
        items = json.loads(listed.stdout or "[]")
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        report.unavailable.append(f"ruff ({type(exc).__name__})")
        return
    report.tools.append("ruff")
    for item in items:
        location = item.get("location") or {}
        report.findings.append(
            {
                "line": int(location.get("row") or 1),
                "code": item.get("code") or "",
                "tool": "ruff",
                "message": item.get("message") or "",
                "fixable": item.get("fix") is not None,
            }
        )
    report.diff = diffed.stdout[:MAX_DIFF_CHARS]


def syntax_findings(lines: list[int], language: str | None, report: LintReport) -> None:
    """Parse errors reported by tree-sitter."""
    report.tools.append(f"tree-sitter ({language})")
    for line in lines:
        report.findings.append({"line": line, "code": "syntax", "tool": "tree-sitter", "message": "Syntax error"})
