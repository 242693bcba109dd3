"""cleanup-temp-files: removes old matching files, and never anything outside its allowed root."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conveyor import Conveyor, JobState
from conveyor.maintenance import cleanup_temp_files
from conveyor.maintenance.errors import PathOutsideRootError, UnsafeCleanupError
from tests.indexer.helpers import running, wait_until

HOUR = 3600.0


def _file(path: Path, age_s: float, now: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("temporary")
    os.utime(path, (now - age_s, now - age_s))
    return path


def test_old_matching_files_go_and_new_or_other_files_stay(cleanup_root: Path) -> None:
    now = time.time()
    old_tmp = _file(cleanup_root / "a.tmp", 48 * HOUR, now)
    deep_old = _file(cleanup_root / "uploads" / "b.tmp", 30 * HOUR, now)
    new_tmp = _file(cleanup_root / "c.tmp", 1 * HOUR, now)
    old_other = _file(cleanup_root / "keep.txt", 48 * HOUR, now)
    report = cleanup_temp_files(cleanup_root, None, "*.tmp", 24 * HOUR, now=now)
    assert sorted(report.removed) == sorted([str(old_tmp), str(deep_old)])
    assert report.kept == 1
    assert report.freed_bytes == 2 * len("temporary")
    assert not old_tmp.exists()
    assert not deep_old.exists()
    assert new_tmp.exists()
    assert old_other.exists()


def test_a_pattern_with_a_slash_matches_paths_relative_to_the_folder(cleanup_root: Path) -> None:
    now = time.time()
    inside_uploads = _file(cleanup_root / "uploads" / "x.part", 48 * HOUR, now)
    elsewhere = _file(cleanup_root / "other" / "y.part", 48 * HOUR, now)
    report = cleanup_temp_files(cleanup_root, None, "uploads/*.part", 0, now=now)
    assert report.removed == [str(inside_uploads)]
    assert elsewhere.exists()


def test_dry_run_reports_without_deleting(cleanup_root: Path) -> None:
    now = time.time()
    old = _file(cleanup_root / "old.log", 48 * HOUR, now)
    report = cleanup_temp_files(cleanup_root, None, "*.log", HOUR, now=now, dry_run=True)
    assert report.removed == [str(old)]
    assert old.exists()


@pytest.mark.parametrize("directory", ["..", "../elsewhere", "/", "/etc", "sub/../../elsewhere"])
def test_folders_outside_the_root_are_refused_and_nothing_is_deleted(
    cleanup_root: Path, tmp_path: Path, directory: str
) -> None:
    victim = _file(tmp_path / "elsewhere" / "precious.tmp", 48 * HOUR, time.time())
    with pytest.raises(PathOutsideRootError, match="outside the allowed root"):
        cleanup_temp_files(cleanup_root, directory, "*", 0, now=time.time())
    assert victim.exists()


def test_a_symlink_out_of_the_root_is_not_followed(cleanup_root: Path, tmp_path: Path) -> None:
    now = time.time()
    victim = _file(tmp_path / "elsewhere" / "precious.tmp", 48 * HOUR, now)
    (cleanup_root / "escape").symlink_to(victim.parent, target_is_directory=True)
    (cleanup_root / "link.tmp").symlink_to(victim)
    with pytest.raises(PathOutsideRootError):
        cleanup_temp_files(cleanup_root, "escape", "*", 0, now=now)
    report = cleanup_temp_files(cleanup_root, None, "*.tmp", 0, now=now + 60)
    assert report.removed == [str(cleanup_root / "link.tmp")]  # the link itself, not its target
    assert victim.exists()


@pytest.mark.parametrize("pattern", ["../*.tmp", "/etc/*", ""])
def test_patterns_that_climb_out_are_refused(cleanup_root: Path, pattern: str) -> None:
    with pytest.raises(UnsafeCleanupError):
        cleanup_temp_files(cleanup_root, None, pattern, 0, now=time.time())


def test_the_file_system_root_is_never_an_allowed_root() -> None:
    with pytest.raises(UnsafeCleanupError):
        cleanup_temp_files(Path("/"), None, "*.tmp", 0, now=time.time())


async def test_the_job_cleans_inside_the_root_and_fails_at_once_outside_it(
    app: Conveyor, cleanup_root: Path, tmp_path: Path
) -> None:
    now = time.time()
    old = _file(cleanup_root / "stale.tmp", 48 * HOUR, now)
    victim = _file(tmp_path / "elsewhere" / "precious.tmp", 48 * HOUR, now)
    queue = app.queue("background")
    async with running(app.worker(["background"])):
        ok = await app.add("background", "cleanup-temp-files", {"pattern": "*.tmp", "older_than_hours": 24})
        bad = await app.add(
            "background", "cleanup-temp-files", {"directory": str(victim.parent), "older_than_hours": 0}, attempts=3
        )
        for job_id in (ok, bad):
            await wait_until(lambda job_id=job_id: _finished(app, job_id))
    done, refused = await queue.get_job(ok), await queue.get_job(bad)
    assert done.result["removed"] == [str(old)]
    assert refused.state is JobState.FAILED
    assert refused.attempts_made == 1
    assert "outside the allowed root" in (refused.failed_reason or "")
    assert victim.exists()


async def _finished(app: Conveyor, job_id: str) -> bool:
    return await app.queue("background").state_of(job_id) in (JobState.COMPLETED, JobState.FAILED)
