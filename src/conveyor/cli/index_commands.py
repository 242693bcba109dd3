"""`conveyor index`, `conveyor search`, `conveyor embed` and `conveyor ai summarize|show`: the codebase indexer
and AI processing from the command line.

Mount in `conveyor.cli.main`:

    cli.command()(index_commands.index)
    cli.command(context_settings=index_commands.SEARCH_CONTEXT)(index_commands.search)
    cli.command()(index_commands.embed)
    cli.add_typer(index_commands.ai_cli, name="ai")
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from conveyor.ai.provider import TASKS
from conveyor.app import Conveyor
from conveyor.cli.errors import UsageError, cli_command, run_async
from conveyor.cli.options import AppOption, JsonOption, open_app
from conveyor.cli.output import print_json, say, stderr, stdout
from conveyor.cli.session import connected
from conveyor.errors import ConveyorError
from conveyor.indexer.query import SearchMode
from conveyor.queue.job import Job, JobState

POLL_S = 0.2
NO_WORKER_HINT_S = 3.0
FINISHED = (JobState.COMPLETED, JobState.FAILED)
BULK = 500
# `conveyor search -send` searches for "-send": an unknown option-like word is the query, not an error.
SEARCH_CONTEXT = {"ignore_unknown_options": True}

IndexOption = Annotated[
    Path | None,
    typer.Option("--index", help="Index database file. Default: CONVEYOR_INDEX_PATH, else <data dir>/index.sqlite."),
]


class JobFailedError(ConveyorError):
    """A job the command waited for failed."""


def _index_path(app: Conveyor, override: Path | None) -> Path:
    from conveyor.indexer.settings import IndexerSettings

    return IndexerSettings().index_path(app.settings.conveyor_data_dir, override)


def _shown(path: str) -> str:
    """A path relative to the current folder when it is inside it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


# --- conveyor index ----------------------------------------------------------------------------------------


@cli_command
def index(
    path: Annotated[Path, typer.Argument(help="Repository root to index.")] = Path("."),
    watch: Annotated[bool, typer.Option("--watch", help="Then keep re-indexing files as they change.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Re-read every file, even unchanged ones.")] = False,
    index_file: IndexOption = None,
    app_spec: AppOption = None,
) -> None:
    """Index a repository through the `indexing` queue, with a live progress bar (workers do the work: run
    `conveyor up` or `conveyor worker`). With --watch, saves are re-indexed, a burst of saves as one job."""
    if not path.is_dir():
        raise UsageError(f"{path} is not a folder; give the root of a repository.")
    app = open_app(app_spec, "indexing")
    try:
        run_async(_index(app, path.resolve(), watch, force, _index_path(app, index_file)))
    except KeyboardInterrupt:
        say("Stopped.")


async def _index(app: Conveyor, root: Path, watch: bool, force: bool, index_path: Path) -> None:
    from conveyor.indexer.jobs import start_full_index

    async with connected(app):
        job_id = await start_full_index(app, root, index=index_path, force=force)
        job = await _follow_full_index(app, job_id, f"Indexing {_shown(str(root))}")
        if job.state is JobState.FAILED:
            raise JobFailedError(f"Indexing failed (job {job_id}): {job.failed_reason}")
        say(index_summary(job.result or {}) + f" Index: {index_path}", style="green")
        if watch:
            await _watch(app, root, index_path)


SUMMARIZED = ("indexed", "unchanged", "removed", "failed")


def index_summary(result: dict[str, Any]) -> str:
    """One line for a full index's result: files re-parsed, unchanged, removed and failed, then every other
    outcome that occurred (`2 unreadable, 1 symlink-loop, 3 binary, 1 vanished`)."""
    outcomes: dict[str, int] = result.get("outcomes") or {}
    indexed = result.get("indexed", result.get("done", 0))
    line = (
        f"Indexed {indexed} file(s); {result.get('unchanged', 0)} unchanged, {result.get('removed', 0)} removed, "
        f"{result.get('failed', 0)} failed."
    )
    others = [f"{count} {outcome}" for outcome, count in outcomes.items() if outcome not in SUMMARIZED and count]
    return line + (f" Also: {', '.join(others)}." if others else "")


async def _follow_full_index(app: Conveyor, job_id: str, label: str) -> Job:
    from conveyor.indexer.fullindex import full_index_status

    started, hinted = time.monotonic(), False
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=stderr(), transient=True) as progress:
        bar = progress.add_task(label, total=None)
        while True:
            status = await full_index_status(app, "indexing", job_id)
            if status.total is not None:
                progress.update(bar, total=status.total, completed=status.done)
            if status.ended:
                return status.job
            if not hinted and time.monotonic() - started > NO_WORKER_HINT_S and status.job.state is not JobState.ACTIVE:
                hinted = await _hint_if_no_worker(app)
            await asyncio.sleep(POLL_S)


async def _hint_if_no_worker(app: Conveyor) -> bool:
    if not await app.workers(node=False):  # a Node worker has no indexer handlers
        stderr().print("No worker is running: start one with `conveyor up` (the job waits in the queue).")
    return True


async def _watch(app: Conveyor, root: Path, index_path: Path) -> None:
    from conveyor.indexer.settings import IndexerSettings
    from conveyor.indexer.watch import ChangeWatcher

    debounce = IndexerSettings().conveyor_index_watch_debounce_ms
    say(f"Watching {_shown(str(root))} for changes (Ctrl-C to stop).")
    watcher = ChangeWatcher(
        app, root, index=index_path, debounce_ms=debounce, on_change=lambda p: say(f"queued {_shown(str(p))}")
    )
    await watcher.run()


# --- conveyor search ---------------------------------------------------------------------------------------


@cli_command
def search(
    query: Annotated[
        str,
        typer.Argument(
            help='Words and identifiers (camelCase and snake_case are split), "quoted phrases", or with --mode '
            "a substring or regex. A query starting with - is fine (`conveyor search -send`, or after `--`)."
        ),
    ],
    limit: Annotated[int, typer.Option(min=1, max=500, help="Number of hits.")] = 20,
    mode: Annotated[
        SearchMode,
        typer.Option(
            "--mode",
            help="lexical (words), phrase, substring, regex (Python syntax), semantic (meaning, by embeddings) or "
            "hybrid (lexical and semantic fused).",
        ),
    ] = SearchMode.LEXICAL,
    semantic: Annotated[
        bool, typer.Option("--semantic", help="Same as --mode hybrid: words and meaning, exact names first.")
    ] = False,
    index_file: IndexOption = None,
    json_out: JsonOption = False,
    app_spec: AppOption = None,
) -> None:
    """Search the code index: ranked hits with file, line and symbol (no Redis needed)."""
    from conveyor.indexer.embedding import embedder_from
    from conveyor.indexer.errors import EmbeddingError, SearchQueryError, SemanticIndexEmptyError
    from conveyor.indexer.semantic import search_code
    from conveyor.indexer.settings import IndexerSettings
    from conveyor.indexer.store import CodeIndex

    app = open_app(app_spec)
    path = _index_path(app, index_file)
    if not path.exists():
        raise UsageError(f"No index at {path}: run `conveyor index PATH` first (or pass --index).")
    settings = IndexerSettings()
    mode = SearchMode.HYBRID if semantic else mode
    code_index = CodeIndex(path, search_timeout_s=settings.conveyor_search_timeout_s, create=False)
    embedder = None
    try:
        embedder = embedder_from(settings) if mode.uses_vectors else None
        hits = search_code(code_index, query, limit, mode=mode, embedder=embedder)
    except (SearchQueryError, SemanticIndexEmptyError, EmbeddingError) as exc:
        raise UsageError(str(exc)) from exc
    finally:
        code_index.close()
        if embedder is not None:
            embedder.close()
    if json_out:
        print_json(hits)
        return
    if not hits:
        say(f"No matches for {query!r}.")
        return
    console = stdout()
    for hit in hits:
        line = Text(f"{hit.score:7.2f}  ", style="dim")
        line.append(f"{_shown(hit.file)}:{hit.line}", style="bold")
        if hit.symbol:
            line.append(f"  {hit.symbol}", style="cyan")
        console.print(line, soft_wrap=True)
        console.print(Text(f"         {hit.snippet}"), soft_wrap=True)


# --- conveyor embed ----------------------------------------------------------------------------------------


@cli_command
def embed(index_file: IndexOption = None, app_spec: AppOption = None) -> None:
    """Compute the missing symbol embeddings of an index here, without the queue (indexing through workers
    enqueues `embed` jobs instead): for an index made before semantic search, or after changing the provider."""
    from conveyor.indexer.embedding import embedder_from
    from conveyor.indexer.embedjobs import embed_missing
    from conveyor.indexer.errors import EmbeddingError
    from conveyor.indexer.settings import IndexerSettings
    from conveyor.indexer.store import CodeIndex

    app = open_app(app_spec)
    path = _index_path(app, index_file)
    if not path.exists():
        raise UsageError(f"No index at {path}: run `conveyor index PATH` first (or pass --index).")
    settings = IndexerSettings()
    code_index = CodeIndex(path, create=False)
    try:
        embedder = embedder_from(settings)
        if embedder is None:
            raise UsageError("CONVEYOR_EMBED_PROVIDER is `off`: set it to `offline` or `openai` first.")
        started = time.perf_counter()
        count = embed_missing(code_index, embedder, [], settings.conveyor_embed_batch)
        embedder.close()
    except EmbeddingError as exc:
        raise UsageError(str(exc)) from exc
    finally:
        code_index.close()
    say(f"Embedded {count:,} symbols with {embedder.model} in {time.perf_counter() - started:.1f} s.", style="green")


# --- conveyor ai ---------------------------------------------------------------------------------------------

ai_cli = typer.Typer(
    name="ai", help="AI processing of source files on the `ai-processing` queue.", no_args_is_help=True
)


def source_files(paths: Sequence[Path], limit: int) -> list[Path]:
    """The files named, and the source files (languages with a grammar) under the folders named, up to
    `limit`; ignored files (.gitignore) are left out of folders."""
    from conveyor.indexer.languages import PARSED_LANGUAGES, detect_language
    from conveyor.indexer.walker import walk_repository

    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(f.path for f in walk_repository(path) if detect_language(f.path) in PARSED_LANGUAGES)
        elif path.is_file():
            found.append(path.resolve())
        else:
            raise UsageError(f"{path} does not exist.")
    unique = list(dict.fromkeys(found))
    if not unique:
        raise UsageError("No source files found in the given paths.")
    if len(unique) > limit:
        raise UsageError(f"{len(unique)} files found; the limit is {limit}. Narrow the paths or raise --max-files.")
    return unique


@ai_cli.command("summarize")
@cli_command
def summarize(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders (folders: their source files).")],
    task: Annotated[str, typer.Option(help=f"One of {', '.join(TASKS)}.")] = "generate-summary",
    provider: Annotated[
        str | None, typer.Option(help="offline, openai or anthropic (default: CONVEYOR_AI_PROVIDER).")
    ] = None,
    max_files: Annotated[int, typer.Option(min=1, help="Refuse to queue more files than this.")] = 500,
    index_file: IndexOption = None,
    app_spec: AppOption = None,
) -> None:
    """Queue one AI job per file (a batch) and follow it with a progress bar; results are stored beside the
    index (see `conveyor ai show FILE`)."""
    if task not in TASKS:
        raise UsageError(f"--task {task!r}: use one of {', '.join(TASKS)}.")
    if provider not in (None, "offline", "openai", "anthropic"):
        raise UsageError(f"--provider {provider!r}: use offline, openai or anthropic.")
    app = open_app(app_spec, "ai-processing")
    files = source_files(paths, max_files)
    fields: dict[str, str] = {"index": str(_index_path(app, index_file))}
    if provider:
        fields["provider"] = provider
    run_async(_summarize(app, files, task, fields))


async def _summarize(app: Conveyor, files: list[Path], task: str, fields: dict[str, str]) -> None:
    from conveyor.ai.jobs import batch

    async with connected(app):
        jobs = batch(files, task, **fields)
        ids: list[str] = []
        for start in range(0, len(jobs), BULK):
            ids.extend(await app.add_bulk("ai-processing", jobs[start : start + BULK]))
        states = await _follow_batch(app, ids, f"{task} of {len(ids)} file(s)")
    failed = [str(f) for f, s in zip(files, states, strict=True) if s is JobState.FAILED]
    say(f"{len(files) - len(failed)} done, {len(failed)} failed. See a result with `conveyor ai show FILE`.")
    for path in failed[:10]:
        say(f"failed: {_shown(path)} (see `conveyor jobs ai-processing --state failed`)", style="red")


async def _follow_batch(app: Conveyor, ids: list[str], label: str) -> list[JobState]:
    queue = app.queue("ai-processing")
    states = [JobState.WAITING] * len(ids)
    started, hinted = time.monotonic(), False
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=stderr(), transient=True) as progress:
        bar = progress.add_task(label, total=len(ids))
        while True:
            for n, job_id in enumerate(ids):
                if states[n] not in FINISHED:
                    states[n] = await queue.state_of(job_id)
            done = sum(1 for s in states if s in FINISHED)
            progress.update(bar, completed=done)
            if done == len(ids):
                return states
            if not hinted and time.monotonic() - started > NO_WORKER_HINT_S and JobState.ACTIVE not in states:
                hinted = await _hint_if_no_worker(app)
            await asyncio.sleep(POLL_S)


@ai_cli.command("show")
@cli_command
def show(
    path: Annotated[Path, typer.Argument(help="The file whose AI results to show.")],
    task: Annotated[str | None, typer.Option(help="Only this task's results.")] = None,
    all_results: Annotated[bool, typer.Option("--all", help="Every stored result, not only the newest.")] = False,
    index_file: IndexOption = None,
    json_out: JsonOption = False,
    app_spec: AppOption = None,
) -> None:
    """Show the stored AI results of a file (newest first)."""
    from rich.markdown import Markdown

    from conveyor.ai.results import ResultStore
    from conveyor.indexer.store import CodeIndex

    app = open_app(app_spec)
    database = _index_path(app, index_file)
    if not database.exists():
        raise UsageError(f"No index at {database}: run `conveyor ai summarize` or `conveyor index` first.")
    code_index = CodeIndex(database)
    try:
        stored = ResultStore(code_index).for_file(path, task, limit=100 if all_results else 1)
    finally:
        code_index.close()
    if json_out:
        print_json([s.result for s in stored])
        return
    if not stored:
        say(f"No AI results for {path}" + (f" ({task})" if task else "") + ".")
        return
    for item in stored:
        result = item.result
        stdout().rule(f"{result.task} · {result.provider}/{result.model} · job {item.job_id}")
        stdout().print(Markdown(result.text))
