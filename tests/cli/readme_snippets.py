"""Run the README's Python snippets in order, in one namespace, against the deployment the environment names.

`python -m tests.cli.readme_snippets` prints `ran README.md:LINE` for each snippet it ran, `skipped README.md:LINE:
REASON` for each it did not, and exits non-zero with the traceback when one fails. The snippets are written as
a user would type them in `python -m asyncio`: top-level `await`, and `app` (from the first one) in scope.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import re
import sys
from typing import Any

from tests.cli.readme import blocks

# A snippet that runs a worker at its top level runs until stopped: it counts as run when still running after this.
RUNS_UNTIL_STOPPED = re.compile(r"^await .*\.worker\(\)\.run\(\)", re.MULTILINE)
STOPPED_AFTER_S = 3.0
# Snippets that need an optional package the dev lock may not have: (a text in the snippet, the module, why).
NEEDS = [("OTLPSpanExporter", "opentelemetry.exporter", "needs the OTLP exporter, an optional package")]


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:  # its parent package is missing
        return True


def _skip_reason(source: str) -> str | None:
    return next((why for text, module, why in NEEDS if text in source and _missing(module)), None)


async def _run(source: str, namespace: dict[str, Any]) -> None:
    code = compile(source, "<README>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)  # the README's own snippets
    if asyncio.iscoroutine(result):
        await result


async def _run_until_stopped(source: str, namespace: dict[str, Any]) -> None:
    try:
        await asyncio.wait_for(_run(source, namespace), STOPPED_AFTER_S)
    except TimeoutError:
        return
    raise AssertionError("the snippet was expected to run a worker until stopped, but it returned")


async def main() -> None:
    namespace: dict[str, Any] = {"__name__": "readme"}
    for n, snippet in enumerate(blocks("python")):
        reason = _skip_reason(snippet.text)
        if reason is not None:
            print(f"skipped README.md:{snippet.line}: {reason}", flush=True)
            continue
        if "app" in namespace:
            await namespace["app"].connect()  # the first snippet's `async with app` closed it
        runs_until_stopped = RUNS_UNTIL_STOPPED.search(snippet.text) is not None
        await (_run_until_stopped if runs_until_stopped else _run)(snippet.text, namespace)
        if n == 0:
            await _run_until_stopped("await main()", namespace)  # the first snippet defines main(): run it
        print(f"ran README.md:{snippet.line}", flush=True)
    if "app" in namespace:
        await namespace["app"].close()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
