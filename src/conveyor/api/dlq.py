"""The dead-letter queue in the API: list and inspect dead letters; replay or purge them by ids or by filter."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from conveyor.api import fields as described
from conveyor.api.auth import may_read, require
from conveyor.api.context import ApiContext, ApiInfo
from conveyor.api.errors import ApiError, ErrorCode
from conveyor.api.job_node import AttemptNode
from conveyor.api.tokens import Role
from conveyor.api.types import BulkFailure
from conveyor.queue.dlq import DeadLetter, DeadLetterFilter, DeadLetterNotFoundError, DeadLetters, Selection
from conveyor.queue.flows import Flows

MAX_SELECTION = 10_000


def _visible_parent(ctx: ApiContext, key: str | None) -> str | None:
    ref = Flows.of(ctx.app).keys.job_of_key(key) if key else None
    return key if ref is not None and may_read(ctx, ref[0]) else None


@strawberry.type(name="DeadLetter", description="A copy of a job that failed for good, as it was when it failed.")
class DeadLetterNode:
    job_id: strawberry.ID
    queue: str
    type: str
    data: JSON
    options: JSON = strawberry.field(description="The job's stored options (BullMQ's `opts`).")
    failed_reason: str
    attempts_made: int
    history: list[AttemptNode] = strawberry.field(description="Every failed attempt, oldest first.")
    stacktrace: list[str]
    created_at: datetime | None
    failed_at: datetime
    dead_lettered_at: datetime
    worker: str | None
    parent: str | None = strawberry.field(description="The parent's job key when the job was part of a flow.")

    @classmethod
    def of(cls, ctx: ApiContext, letter: DeadLetter) -> DeadLetterNode:
        """The caller's view of a dead letter: its flow parent only when the caller may see the parent's queue."""
        return cls(
            job_id=strawberry.ID(letter.job_id),
            queue=letter.queue,
            type=letter.type,
            data=letter.data,
            options=JSON(dict(letter.options)),
            failed_reason=letter.failed_reason,
            attempts_made=letter.attempts_made,
            history=[AttemptNode.of(record) for record in letter.history],
            stacktrace=list(letter.stacktrace),
            created_at=letter.created_at,
            failed_at=letter.failed_at,
            dead_lettered_at=letter.dead_lettered_at,
            worker=letter.worker,
            parent=_visible_parent(ctx, letter.parent),
        )


@strawberry.type(name="DeadLetterPage", description="A page of a queue's dead letters, newest first.")
class DeadLetterPage:
    total: int = strawberry.field(description="Every dead letter of the queue, whatever the filter.")
    nodes: list[DeadLetterNode]
    has_more: bool


@strawberry.input(name="DeadLetterFilterInput", description="Which dead letters; no criteria: all of them.")
class DeadLetterFilterInput:
    type: str | None = None
    search: str | None = strawberry.field(
        default=None, description="Case-insensitive text in the id, type, payload or failure reason."
    )
    failed_after: datetime | None = None
    failed_before: datetime | None = None

    def to_filter(self) -> DeadLetterFilter:
        """The queue layer's filter."""
        if self.search is not None and len(self.search) > 200:
            raise ApiError(ErrorCode.LIMIT_EXCEEDED, "`search` may be at most 200 characters.")
        return DeadLetterFilter(self.type, self.search or None, self.failed_after, self.failed_before)


@strawberry.type(name="DeadLetterReplayResult", description="What a replay did, or (dry run) would do.")
class ReplayResult:
    matched: int
    replayed: int
    dry_run: bool
    truncated: bool = strawberry.field(description="More letters matched than `limit`; run again for the rest.")
    job_ids: list[strawberry.ID] = strawberry.field(description="The matched letters.")
    new_job_ids: list[strawberry.ID] = strawberry.field(description="The jobs enqueued.")
    failures: list[BulkFailure]


@strawberry.type(name="DeadLetterPurgeResult", description="What a purge deleted, or (dry run) would delete.")
class PurgeResult:
    matched: int
    purged: int
    dry_run: bool
    truncated: bool
    job_ids: list[strawberry.ID]


def _selection(ids: list[strawberry.ID] | None, filter: DeadLetterFilterInput | None) -> Selection:
    return Selection.of([str(job_id) for job_id in ids or ()], filter.to_filter() if filter is not None else None)


def _check(ctx: ApiContext, value: int, name: str, most: int) -> None:
    if not 0 < value <= most:
        raise ApiError(ErrorCode.LIMIT_EXCEEDED, f"`{name}` must be between 1 and {most}.")


def _ids(ctx: ApiContext, ids: list[str]) -> list[strawberry.ID]:
    return [strawberry.ID(job_id) for job_id in ids[: ctx.config.max_page_size]]


@strawberry.type
class DeadLetterQuery:
    @described.field("A queue's dead letters, newest first, filtered, in pages (`offset` skips matches).")
    async def dead_letters(
        self,
        info: ApiInfo,
        queue: str,
        filter: DeadLetterFilterInput | None = None,
        first: int = 20,
        offset: int = 0,
    ) -> DeadLetterPage:
        ctx = info.context
        require(ctx, Role.VIEWER, queue)
        _check(ctx, first, "first", ctx.config.max_page_size)
        if offset < 0:
            raise ApiError(ErrorCode.LIMIT_EXCEEDED, "`offset` must not be negative.")
        letters = DeadLetters.of(ctx.app, queue)
        wanted = filter.to_filter() if filter is not None else None
        page = await letters.letters(wanted, offset=offset, limit=first + 1)
        nodes = [DeadLetterNode.of(ctx, letter) for letter in page[:first]]
        return DeadLetterPage(total=await letters.count(), nodes=nodes, has_more=len(page) > first)

    @described.field("One dead letter by job id (null when there is none).")
    async def dead_letter(self, info: ApiInfo, queue: str, id: strawberry.ID) -> DeadLetterNode | None:
        require(info.context, Role.VIEWER, queue)
        try:
            return DeadLetterNode.of(info.context, await DeadLetters.of(info.context.app, queue).get(str(id)))
        except DeadLetterNotFoundError:
            return None


@strawberry.type
class DeadLetterMutation:
    @described.mutation(
        "Enqueue a fresh job from each selected dead letter (by `ids`, or by `filter`; an empty filter selects "
        "all) and remove the letters. Try `dryRun: true` first: it counts the matches."
    )
    async def replay_dead_letters(
        self,
        info: ApiInfo,
        queue: str,
        ids: list[strawberry.ID] | None = None,
        filter: DeadLetterFilterInput | None = None,
        dry_run: bool = False,
        limit: int = 1000,
    ) -> ReplayResult:
        ctx = info.context
        require(ctx, Role.OPERATOR, queue)
        _check(ctx, limit, "limit", MAX_SELECTION)
        report = await DeadLetters.of(ctx.app, queue).replay(_selection(ids, filter), dry_run=dry_run, limit=limit)
        failures = [
            BulkFailure(id=strawberry.ID(job_id), code=ErrorCode.JOB_STATE_CONFLICT.value, message=reason)
            for job_id, reason in report.failures.items()
        ]
        return ReplayResult(
            matched=report.matched, replayed=report.replayed, dry_run=report.dry_run, truncated=report.truncated,
            job_ids=_ids(ctx, report.job_ids), new_job_ids=_ids(ctx, report.new_job_ids), failures=failures,
        )  # fmt: skip

    @described.mutation(
        "Delete dead letters for good (by `ids`, or by `filter`; an empty filter selects all). `dryRun` counts."
    )
    async def purge_dead_letters(
        self,
        info: ApiInfo,
        queue: str,
        ids: list[strawberry.ID] | None = None,
        filter: DeadLetterFilterInput | None = None,
        dry_run: bool = False,
        limit: int = MAX_SELECTION,
    ) -> PurgeResult:
        ctx = info.context
        require(ctx, Role.OPERATOR, queue)
        _check(ctx, limit, "limit", MAX_SELECTION)
        report = await DeadLetters.of(ctx.app, queue).purge(_selection(ids, filter), dry_run=dry_run, limit=limit)
        return PurgeResult(
            matched=report.matched, purged=report.purged, dry_run=report.dry_run, truncated=report.truncated,
            job_ids=_ids(ctx, report.job_ids),
        )  # fmt: skip
