"""Dead letters: final failures are copied with payload, options and error history; replay, purge, sweep."""

from __future__ import annotations

from conveyor import Conveyor, JobState
from conveyor.queue.dlq import DeadLetterFilter, DeadLetterNotFoundError, DeadLetters, Selection
from conveyor.worker.dead_letters import DeadLetterSettings
from tests.advanced.conftest import advanced, running, state_is, wait_until


async def letters_of(app: Conveyor, queue: str = "background") -> DeadLetters:
    return DeadLetters.of(app, queue)


async def test_job_that_exhausts_its_attempts_becomes_a_dead_letter_with_its_history(app: Conveyor) -> None:
    dlq = await letters_of(app)
    worker, _, _ = advanced(app.worker(["background"]))
    async with running(worker):
        job_id = await app.add("background", "fail", {"reason": "disk full"}, attempts=3, priority="high")
        await wait_until(lambda: dlq.count())
    letter = await dlq.get(job_id)
    assert letter.type == "fail"
    assert letter.data == {"reason": "disk full"}
    assert letter.options["attempts"] == 3
    assert letter.options["priority"] == 2
    assert letter.attempts_made == 3
    assert [record.attempt for record in letter.history] == [1, 2, 3]
    assert all("disk full" in record.error for record in letter.history)
    assert letter.failed_reason == "RuntimeError: disk full"
    assert len(letter.stacktrace) == 3


async def test_non_retryable_failure_is_dead_lettered_after_one_attempt(app: Conveyor) -> None:
    dlq = await letters_of(app)
    worker, _, _ = advanced(app.worker(["background"]))
    async with running(worker):
        job_id = await app.add("background", "fatal", {}, attempts=5)
        await wait_until(lambda: dlq.count())
    letter = await dlq.get(job_id)
    assert letter.attempts_made == 1
    assert "NonRetryableError" in letter.failed_reason


async def test_job_removed_when_it_fails_is_still_dead_lettered(app: Conveyor) -> None:
    dlq = await letters_of(app)
    worker, _, _ = advanced(app.worker(["background"]))
    async with running(worker):
        job_id = await app.add("background", "fail", {"reason": "gone"}, attempts=2, keep_failed=0)
        await wait_until(lambda: dlq.count())
    assert await app.queue("background").state_of(job_id) is JobState.UNKNOWN
    letter = await dlq.get(job_id)
    assert letter.data == {"reason": "gone"}
    assert [record.attempt for record in letter.history] == [1, 2]
    assert letter.failed_reason == "RuntimeError: gone"


async def test_completed_and_retried_jobs_are_not_dead_lettered(app: Conveyor) -> None:
    dlq = await letters_of(app)
    queue = app.queue("background")
    worker, keeper, _ = advanced(app.worker(["background"]))
    async with running(worker):
        done = await app.add("background", "ok", {})
        flaky = await app.add("background", "flaky", {"succeed_from": 2}, attempts=2)
        await wait_until(lambda: state_is(queue, flaky, JobState.COMPLETED))
        await wait_until(lambda: state_is(queue, done, JobState.COMPLETED))
        assert keeper is not None
        await keeper.drain()
    assert await dlq.count() == 0


async def test_sweep_records_a_failed_job_whose_worker_died_before_recording_it(app: Conveyor) -> None:
    queue = app.queue("background")
    plain, _, _ = advanced(app.worker(["background"]), dlq=None)  # no keeper: as if it died right after failing
    async with running(plain):
        job_id = await app.add("background", "fail", {"reason": "lost letter"})
        await wait_until(lambda: state_is(queue, job_id, JobState.FAILED))
    sweeping = app.worker(["background"])
    _, keeper, _ = advanced(sweeping, DeadLetterSettings(sweep_interval_s=60, sweep_grace_s=0))
    assert keeper is not None
    assert await keeper.sweep_once() == {"background": [job_id]}
    letter = await DeadLetters.of(app, "background").get(job_id)
    assert letter.failed_reason == "RuntimeError: lost letter"
    await app.client.delete(keeper.keys.dead_letter_sweep_lock("background"))
    assert await keeper.sweep_once() == {"background": []}  # recorded once, however often swept


async def test_only_one_worker_sweeps_a_queue_per_interval(app: Conveyor) -> None:
    settings = DeadLetterSettings(sweep_interval_s=60, sweep_grace_s=0)
    _, first, _ = advanced(app.worker(["background"]), settings)
    _, second, _ = advanced(app.worker(["background"]), settings)
    assert first is not None
    assert second is not None
    assert await first.sweep_once() == {"background": []}
    assert await second.sweep_once() == {}


async def test_replay_enqueues_a_fresh_job_from_the_copy_and_removes_the_letter(app: Conveyor) -> None:
    dlq = await letters_of(app)
    queue = app.queue("background")
    worker, _, _ = advanced(app.worker(["background"]))
    async with running(worker):
        job_id = await app.add("background", "flaky", {"succeed_from": 2}, attempts=1)
        await wait_until(lambda: dlq.count())
        letter = await dlq.get(job_id)
        report = await dlq.replay(Selection.of(ids=[job_id]))
        assert report.replayed == 1
        (new_id,) = report.new_job_ids
        assert new_id == f"{job_id}-r{letter.mark}"
        await wait_until(lambda: state_is(queue, new_id, JobState.FAILED))
    assert await dlq.count() == 1  # the replay failed again (attempt 1 of its own): a letter of its own
    assert (await dlq.get(new_id)).data == {"succeed_from": 2}
    try:
        await dlq.get(job_id)
    except DeadLetterNotFoundError:
        pass
    else:
        raise AssertionError("the replayed letter should be gone")


async def test_replaying_the_same_letter_twice_adds_one_job(app: Conveyor) -> None:
    dlq = await letters_of(app)
    worker, _, _ = advanced(app.worker(["background"]))
    async with running(worker):
        job_id = await app.add("background", "fatal", {})
        await wait_until(lambda: dlq.count())
    letter = await dlq.get(job_id)
    await dlq.record(letter)  # as if a second replay raced the first one
    first = await dlq.replay(Selection.of(ids=[job_id]))
    await dlq.record(letter)
    second = await dlq.replay(Selection.of(ids=[job_id]))
    assert first.new_job_ids == second.new_job_ids
    assert (await app.queue("background").counts()).pending == 1


async def test_replay_by_filter_previews_the_count_then_replays_only_the_matches(app: Conveyor) -> None:
    dlq = await letters_of(app)
    worker, _, _ = advanced(app.worker(["background"]))
    async with running(worker):
        for reason in ("timeout talking to api", "timeout again", "bad input"):
            await app.add("background", "fatal", {"note": reason})
        await app.add("background", "fail", {"reason": "timeout elsewhere"})
        await wait_until(lambda: _count_is(dlq, 4))
    selection = Selection.of(filter=DeadLetterFilter(job_type="fatal", text="TIMEOUT"))
    preview = await dlq.replay(selection, dry_run=True)
    assert (preview.matched, preview.replayed, await dlq.count()) == (2, 0, 4)
    report = await dlq.replay(selection)
    assert report.replayed == 2
    remaining = await dlq.letters()
    assert sorted(letter.data.get("note") or letter.data.get("reason") for letter in remaining) == [
        "bad input",
        "timeout elsewhere",
    ]


async def _count_is(dlq: DeadLetters, expected: int) -> bool:
    return await dlq.count() == expected


async def test_purge_deletes_selected_letters_or_all_of_them(app: Conveyor) -> None:
    dlq = await letters_of(app)
    worker, _, _ = advanced(app.worker(["background"]))
    async with running(worker):
        ids = [await app.add("background", "fatal", {"n": n}) for n in range(3)]
        await wait_until(lambda: _count_is(dlq, 3))
    assert (await dlq.purge(Selection.of(ids=[ids[0]]))).purged == 1
    assert (await dlq.purge(Selection.of(filter=DeadLetterFilter()), dry_run=True)).matched == 2
    assert (await dlq.purge(Selection.of(filter=DeadLetterFilter()))).purged == 2
    assert await dlq.count() == 0


async def test_dead_letters_beyond_the_limit_drop_the_oldest(app: Conveyor) -> None:
    dlq = DeadLetters(app.queue("background"), max_entries=2)
    worker, _, _ = advanced(app.worker(["background"]), DeadLetterSettings(max_entries=2, sweep_interval_s=60))
    async with running(worker):
        ids = []
        for n in range(3):
            ids.append(await app.add("background", "fatal", {"n": n}))
            await wait_until(lambda n=n: _has(dlq, ids[n]))
    assert [letter.job_id for letter in await dlq.letters()] == [ids[2], ids[1]]


async def _has(dlq: DeadLetters, job_id: str) -> bool:
    try:
        await dlq.get(job_id)
    except DeadLetterNotFoundError:
        return False
    return True


async def test_letters_list_newest_first_and_filter_by_failure_time(app: Conveyor) -> None:
    dlq = await letters_of(app)
    worker, _, _ = advanced(app.worker(["background"]))
    async with running(worker):
        first = await app.add("background", "fatal", {})
        await wait_until(lambda: _has(dlq, first))
        second = await app.add("background", "fatal", {})
        await wait_until(lambda: _has(dlq, second))
    newest, oldest = await dlq.letters()
    assert (newest.job_id, oldest.job_id) == (second, first)
    later = await dlq.letters(DeadLetterFilter(failed_after=newest.failed_at))
    assert [letter.job_id for letter in later] == [second]
    assert [letter.job_id for letter in await dlq.letters(offset=1)] == [first]
