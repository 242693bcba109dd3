"""`conveyor limits`: the queue-wide limits in force in Redis, and which of them this configuration sets."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from conveyor.app import Conveyor
from conveyor.cli.errors import UsageError, cli_command, run_async
from conveyor.cli.options import AppOption, JsonOption, TenantOption, open_app
from conveyor.cli.output import print_json, stdout
from conveyor.cli.session import check_tenant, connected
from conveyor.queue.limits import QueueLimits

LimitsRow = tuple[str, QueueLimits, QueueLimits]  # queue, in force, configured


@cli_command
def limits(
    queue: Annotated[str | None, typer.Argument(help="One queue (default: every configured queue).")] = None,
    remove_rate_limit: Annotated[bool, typer.Option(help="Delete QUEUE's rate limit from Redis first.")] = False,
    remove_concurrency: Annotated[bool, typer.Option(help="Delete QUEUE's global concurrency first.")] = False,
    as_json: JsonOption = False,
    tenant: TenantOption = None,
    app_spec: AppOption = None,
) -> None:
    """Show each queue's queue-wide rate limit and global concurrency in force in Redis (enforced for every
    worker, Node BullMQ ones included), and whether this configuration sets them or they were set elsewhere
    (Node `setGlobalRateLimit` / `setGlobalConcurrency`, another deployment). Connecting writes the configured
    ones first, so a limit removed here that the configuration sets comes back with the next command or worker
    that has it: remove it from CONVEYOR_QUEUES too."""
    if (remove_rate_limit or remove_concurrency) and queue is None:
        raise UsageError("Name the QUEUE whose limits to remove.")
    app = open_app(app_spec, *([queue] if queue else []))
    check_tenant(tenant)
    removing = {"rate_limit": remove_rate_limit, "global_concurrency": remove_concurrency}
    rows = run_async(_read(app, tenant, queue, removing))
    if as_json:
        print_json([{"queue": q, "in_force": now.to_dict(), "configured": conf.to_dict()} for q, now, conf in rows])
        return
    stdout().print(_table(rows))


async def _read(app: Conveyor, tenant: str | None, queue: str | None, removing: dict[str, bool]) -> list[LimitsRow]:
    async with connected(app, tenant) as view:
        if queue is not None and any(removing.values()):
            await view.queue(queue).remove_limits(**removing)
        names = [queue] if queue else view.queue_names
        rows = []
        for name in names:
            settings = view.queue_settings.get(name)
            configured = QueueLimits(
                settings.rate_limit if settings else None, settings.global_concurrency if settings else None
            )
            rows.append((name, await view.queue(name).limits(), configured))
        return rows


def _table(rows: list[LimitsRow]) -> Table:
    table = Table(title="Queue-wide limits in force", title_justify="left")
    for column in ("Queue", "Rate limit", "Global concurrency", "Set by"):
        table.add_column(column)
    for name, now, configured in rows:
        rate = QueueLimits(now.rate_limit).describe() if now.rate_limit else "-"
        concurrency = str(now.global_concurrency) if now.global_concurrency is not None else "-"
        table.add_row(Text(name), rate, concurrency, _source(now, configured))
    return table


def _source(now: QueueLimits, configured: QueueLimits) -> str:
    if now == QueueLimits():
        return "-"
    if configured == now:
        return "this configuration"
    if configured == QueueLimits():
        return "elsewhere (Node or another deployment)"
    return "partly this configuration, partly elsewhere"
