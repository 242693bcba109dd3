"""An app with every domain package registered, for CLI tests; `python -m tests.indexer.cli_app` runs a
worker on all its queues (REDIS_URL and CONVEYOR_DATA_DIR from the environment) until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os

from conveyor import Conveyor, load_settings
from conveyor.ai import register as register_ai
from conveyor.indexer import register as register_indexer
from conveyor.maintenance import register as register_maintenance


def create_app() -> Conveyor:
    app = Conveyor(load_settings())
    register_indexer(app)
    register_ai(app)
    register_maintenance(app)
    return app


async def main() -> None:
    app = create_app()
    async with app:
        worker = app.worker()
        worker.install_signal_handlers()
        await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main())
    os._exit(0)
