"""A minimal user app for `conveyor worker --app tests.cli.lean_app:app`: one handler on a standard queue.

The handler reports which of the modules a worker does not need its process has imported (see
tests/cli/test_worker_imports.py).
"""

from __future__ import annotations

import gc
import sys

from conveyor import Conveyor

# What `conveyor worker` must not import for an app that does not use it: the GraphQL API and its server, the
# dashboard, the code indexer and AI features (tree-sitter, the embedding model, numpy), webhook HTTP, the browser
# driver of the dashboard tests, the other CLI commands and their renderers (Markdown, syntax highlighting, and Rich
# itself: a worker prints plain lines), cron parsing (croniter, with pytz and dateutil) for an app without cron
# schedules, the Python `bullmq` client (only its Lua scripts are read), and `prometheus_client` for a worker
# without `--metrics-port` (its counts go to Redis and stay in plain numbers until a metrics port serves them).
# The `conveyor.indexer` and `conveyor.ai` packages themselves load their names lazily: the CLI's option types
# (`SearchMode`, the AI task names) are all it takes from them.
HEAVY_MODULES = (
    "conveyor.api.server",
    "conveyor.dashboard",
    "conveyor.indexer.jobs",
    "conveyor.indexer.store",
    "conveyor.indexer.embedding",
    "conveyor.ai.jobs",
    "conveyor.ai.http",
    "strawberry",
    "graphql",
    "starlette",
    "uvicorn",
    "tree_sitter",
    "numpy",
    "wordllama",
    "httpx",
    "playwright",
    "markdown_it",
    "pygments",
    "conveyor.cli.index_commands",
    "conveyor.cli.dlq_commands",
    "conveyor.cli.api_commands",
    "conveyor.api",
    "rich",
    "croniter",
    "bullmq",
    "prometheus_client",
)

app = Conveyor()


@app.handler("background", "imported")
async def imported(_: object) -> list[str]:
    return sorted(name for name in HEAVY_MODULES if name in sys.modules)


@app.handler("background", "frozen")
async def frozen(_: object) -> int:
    return gc.get_freeze_count()
