"""Every per-file problem is a recorded outcome: never an exception from the index, never a retried job, and
counted exactly in a full index's result and the CLI's summary."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, JobState
from conveyor.cli.index_commands import index_summary
from conveyor.indexer import fullindex
from conveyor.indexer.fullindex import follow_full_index
from conveyor.indexer.store import CodeIndex
from conveyor.indexer.walker import walk_repository
from tests.indexer.helpers import running, wait_until

BUNDLE = "var a=function(){return 1};" * 400  # one 10 KB line
UNREADABLE_NAME = "secret.py"


@pytest.fixture
def index(tmp_path: Path) -> Iterator[CodeIndex]:
    code_index = CodeIndex(tmp_path / "index.sqlite")
    yield code_index
    code_index.close()


@pytest.fixture
def unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files named `secret.py` cannot be read (tests run as root, which permissions would not stop)."""
    original = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == UNREADABLE_NAME:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)


def _loop(directory: Path) -> Path:
    (directory / "loop_a.py").symlink_to(directory / "loop_b.py")
    (directory / "loop_b.py").symlink_to(directory / "loop_a.py")
    return directory / "loop_a.py"


def test_a_symlink_loop_is_an_outcome_not_an_error(index: CodeIndex, tmp_path: Path) -> None:
    assert index.index_file(_loop(tmp_path)).status == "symlink-loop"


def test_an_unreadable_file_is_an_outcome_and_leaves_the_index(
    index: CodeIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / UNREADABLE_NAME
    path.write_text("def hidden():\n    pass\n")
    assert index.index_file(path).status == "indexed"
    monkeypatch.setattr(Path, "read_bytes", lambda self: (_ for _ in ()).throw(PermissionError(errno.EACCES, "no")))
    assert index.index_file(path).status == "unreadable"
    assert index.file(path) is None


def test_a_folder_and_a_vanished_file_are_outcomes(index: CodeIndex, tmp_path: Path) -> None:
    (tmp_path / "folder.py").mkdir()
    assert index.index_file(tmp_path / "folder.py").status == "not-a-file"
    assert index.index_file(tmp_path / "gone.py").status == "vanished"


def test_a_minified_bundle_is_not_indexed_as_source(index: CodeIndex, tmp_path: Path) -> None:
    bundle = tmp_path / "app.js"
    bundle.write_text(BUNDLE + "\n")
    assert index.index_file(bundle).status == "minified"
    assert index.file(bundle) is None
    assert index.stats().symbols == 0


def test_the_walk_reports_what_it_skips_and_why(tmp_path: Path) -> None:
    _loop(tmp_path)
    (tmp_path / "logo.png").write_bytes(b"\x89PNG")
    (tmp_path / "blob.txt").write_bytes(b"data\0\0")
    (tmp_path / "empty.py").write_text("")
    (tmp_path / "main.py").write_text("x = 1\n")
    skipped: dict[str, str] = {}
    found = [f.relative for f in walk_repository(tmp_path, skipped=lambda p, why: skipped.update({p.name: why}))]
    assert found == ["main.py"]
    assert skipped == {
        "loop_a.py": "symlink",
        "loop_b.py": "symlink",
        "logo.png": "binary",
        "blob.txt": "binary",
        "empty.py": "empty",
    }


async def _run(app: Conveyor, job_type: str, data: dict[str, Any]) -> Any:
    """Run a job to its end (a full index: to the end of its batches); returns the job holding the result."""
    queue = app.queue("indexing")
    async with running(app.worker(["indexing"])):
        job_id = await app.add("indexing", job_type, data)
        if job_type == "full-index":
            return await follow_full_index(app, "indexing", job_id, poll_s=0.05)

        async def finished() -> bool:
            return await queue.state_of(job_id) in (JobState.COMPLETED, JobState.FAILED)

        await wait_until(finished, timeout=30)
    return await queue.get_job(job_id)


async def test_an_unreadable_index_file_job_fails_once_without_retries(
    app: Conveyor, tmp_path: Path, unreadable: None
) -> None:
    path = tmp_path / UNREADABLE_NAME
    path.write_text("x = 1\n")
    job = await _run(app, "index-file", {"path": str(path)})
    assert job.state is JobState.FAILED
    assert job.attempts_made == 1
    assert "unreadable" in (job.failed_reason or "")


async def test_a_symlink_loop_index_file_job_fails_once_without_retries(app: Conveyor, tmp_path: Path) -> None:
    job = await _run(app, "index-file", {"path": str(_loop(tmp_path))})
    assert (job.state, job.attempts_made) == (JobState.FAILED, 1)
    assert "symlink-loop" in (job.failed_reason or "")


async def test_full_index_counts_every_outcome_exactly(
    app: Conveyor, repo: Path, unreadable: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _loop(repo)
    (repo / "web" / "bundle.js").write_text(BUNDLE)
    (repo / UNREADABLE_NAME).write_text("x = 1\n")
    doomed = repo / "doomed.py"
    doomed.write_text("def short_lived():\n    pass\n")
    plan = fullindex.plan_full_index

    def plan_then_delete(*args: Any, **kwargs: Any) -> fullindex.FullIndexPlan:
        planned = plan(*args, **kwargs)
        doomed.unlink()  # deleted after the walk saw it, before its child runs
        return planned

    monkeypatch.setattr(fullindex, "plan_full_index", plan_then_delete)
    job = await _run(app, "full-index", {"root": str(repo)})
    assert job.state is JobState.COMPLETED, job.failed_reason
    result = job.result
    assert result["outcomes"] == {
        "binary": 2,
        "indexed": 8,
        "minified": 1,
        "symlink": 2,
        "unreadable": 1,
        "vanished": 1,
    }
    assert (result["total"], result["indexed"], result["failed"], result["vanished"]) == (11, 8, 1, 1)
    assert result["failedFiles"] == [str(repo / UNREADABLE_NAME)]
    assert index_summary(result) == (
        "Indexed 8 file(s); 0 unchanged, 0 removed, 1 failed. "
        "Also: 2 binary, 1 minified, 2 symlink, 1 unreadable, 1 vanished."
    )


async def test_a_second_full_index_says_nothing_was_re_parsed(app: Conveyor, repo: Path) -> None:
    await _run(app, "full-index", {"root": str(repo)})
    for path in (repo / "billing" / "invoice.py", repo / "web" / "events.js"):
        path.write_text(path.read_text())  # touched: enqueued again, but the same content
    result = (await _run(app, "full-index", {"root": str(repo)})).result
    assert (result["total"], result["indexed"], result["unchanged"]) == (2, 0, 8)
    assert index_summary(result).startswith("Indexed 0 file(s); 8 unchanged, 0 removed, 0 failed.")
