"""Handlers of the demo cluster that `showcase.py` photographs for the README (a worker runs them)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from conveyor import Conveyor, JobContext, load_settings


class ParseError(Exception):
    """A source file the indexer cannot parse."""


def parse_source(path: str) -> dict[str, Any]:
    """Pretend to parse a file; one legacy file always fails."""
    if path.endswith("legacy/parser.ts"):
        raise ParseError(f"Unexpected token '<' at {path}:214:9 (is this JSX in a .ts file?)")
    return {"symbols": random.randint(3, 80)}


def register(app: Conveyor) -> Conveyor:
    """Register the demo handlers on an app."""

    @app.handler("indexing", "index-file")
    async def index_file(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        await asyncio.sleep(random.uniform(0.05, 0.35))
        if random.random() < 0.04:
            raise TimeoutError("tree-sitter parse exceeded 5000 ms")
        return parse_source(payload["filePath"])

    @app.handler("ai-processing", "summarize")
    async def summarize(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        for step in range(1, 5):
            await asyncio.sleep(random.uniform(0.2, 0.5))
            ctx.progress(step * 25)
            ctx.log(f"chunk {step}/4 summarized")
        return {"summary": f"{payload['symbol']} does things", "tokens": random.randint(200, 900)}

    @app.handler("background", "cleanup-temp-files")
    async def cleanup(payload: dict[str, Any]) -> dict[str, int]:
        await asyncio.sleep(random.uniform(0.01, 0.05))
        return {"removed": random.randint(0, 40)}

    return app


async def main() -> None:
    """Run a worker for every queue (REDIS_URL from the environment)."""
    app = register(Conveyor(load_settings()))
    async with app:
        worker = app.worker(None)
        worker.install_signal_handlers()
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
