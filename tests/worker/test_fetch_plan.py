"""The fetch decision without Redis: each row is a history of events, then the step the plan takes at `now`."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conveyor.worker.fetch_plan import FetchAction, FetchPlan, FetchStep

Event = Callable[[FetchPlan], None]

FETCH = FetchStep(FetchAction.FETCH)
PROBE = FetchStep(FetchAction.PROBE)
WAIT_AND_FETCH = FetchStep(FetchAction.WAIT_AND_FETCH)
WAIT = FetchStep(FetchAction.WAIT)


def wait(due_in_s: float) -> FetchStep:
    return FetchStep(FetchAction.WAIT, due_in_s)


def step(plan: FetchPlan) -> None:
    plan.next_step(0)  # a step taken earlier (its own outcome is asserted elsewhere)


def took_a_job(plan: FetchPlan) -> None:
    plan.next_step(0)
    plan.fetched()


def empty(next_delayed_ms: int = 0, rate_limit_delay_ms: int = 0, now: int = 1000) -> Event:
    return lambda plan: plan.came_back_empty(now, next_delayed_ms, rate_limit_delay_ms)


def probed(waiting: int) -> Event:
    return lambda plan: plan.probed(waiting)


def woke(score: int | None) -> Event:
    return lambda plan: plan.woke(score)


@pytest.mark.parametrize(
    ("history", "now", "expected"),
    [
        pytest.param([], 0, FETCH, id="on start, look at once"),
        pytest.param([took_a_job], 0, WAIT, id="after a fetch the wait waits for the marker"),
        pytest.param([took_a_job, woke(0)], 0, PROBE, id="a marker right after a fetch is probed first"),
        pytest.param([took_a_job, woke(0), probed(3)], 0, FETCH, id="a probe that finds jobs fetches"),
        pytest.param([took_a_job, woke(0), probed(0)], 0, WAIT, id="a probe that finds none waits"),
        pytest.param([step, empty()], 5000, WAIT, id="an empty queue waits without a due time"),
        pytest.param([step, empty(), woke(0)], 5000, FETCH, id="a marker after a real wait fetches at once"),
        pytest.param([step, empty(), woke(None)], 5000, FETCH, id="a timeout or nudge looks again"),
        pytest.param([step, empty(next_delayed_ms=3000)], 1500, wait(1.5), id="waits until a delayed job is due"),
        pytest.param([step, empty(next_delayed_ms=3000)], 3000, FETCH, id="fetches when a delayed job is due"),
        pytest.param([step, empty(next_delayed_ms=3000)], 4000, FETCH, id="fetches when a delayed job is overdue"),
        pytest.param(
            [step, empty(next_delayed_ms=3000, rate_limit_delay_ms=200)],
            1100,
            wait(0.1),
            id="the queue-wide rate limit's window comes before the next delayed job",
        ),
        pytest.param([step, empty(), woke(2500)], 2000, wait(0.5), id="a delayed job's marker sets the due time"),
        pytest.param([step, empty(next_delayed_ms=3000), woke(2500)], 2000, wait(0.5), id="an earlier marker wins"),
        pytest.param([step, empty(next_delayed_ms=2500), woke(3000)], 2000, wait(0.5), id="a later marker does not"),
        pytest.param([step, lambda plan: plan.rate_limited(1800)], 1000, wait(0.8), id="own rate limit waits"),
        pytest.param([step, lambda plan: plan.rate_limited(1800)], 1800, FETCH, id="own rate limit window ends"),
        pytest.param(
            [step, empty(next_delayed_ms=3000), lambda plan: plan.held_back()],
            5000,
            WAIT,
            id="held back for priority slots: wait for new work or a freed slot",
        ),
        pytest.param([took_a_job, lambda plan: plan.look_again()], 0, PROBE, id="a freed slot looks again"),
        pytest.param([step, empty(), lambda plan: plan.look_again()], 0, FETCH, id="a forgotten script fetches"),
    ],
)
def test_the_plan_takes_the_step_its_history_calls_for(history: list[Event], now: int, expected: FetchStep) -> None:
    plan = FetchPlan()
    for event in history:
        event(plan)
    assert plan.next_step(now) == expected


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        pytest.param([step, empty()], WAIT_AND_FETCH, id="an idle fetcher sends the fetch behind its wait"),
        pytest.param([took_a_job], WAIT, id="not right after a fetch: that marker is probed first"),
        pytest.param([took_a_job, woke(0), probed(0)], WAIT_AND_FETCH, id="after an empty probe"),
        pytest.param([step, empty(next_delayed_ms=9000)], wait(8.0), id="not while a delayed job is to be waited for"),
    ],
)
def test_a_wait_carries_the_fetch_only_when_the_fetcher_has_nothing_to_decide(
    history: list[Event], expected: FetchStep
) -> None:
    plan = FetchPlan(wait_may_fetch=True)
    for event in history:
        event(plan)
    assert plan.next_step(1000) == expected


def test_a_wait_never_carries_the_fetch_when_the_runner_does_not_allow_it() -> None:
    plan = FetchPlan(wait_may_fetch=False)
    step(plan)
    empty()(plan)
    assert plan.next_step(1000) == WAIT


@pytest.mark.parametrize(
    ("history", "backlog"),
    [
        pytest.param([], True, id="a backlog is assumed on start"),
        pytest.param([probed(2)], True, id="two or more waiting is a backlog"),
        pytest.param([probed(1)], False, id="one waiting is not"),
        pytest.param([probed(5), lambda plan: plan.ran_dry()], False, id="a prefetch that found none ends it"),
        pytest.param([probed(0), probed(4)], True, id="a later probe finds one again"),
    ],
)
def test_the_backlog_is_what_the_last_look_saw(history: list[Event], backlog: bool) -> None:
    plan = FetchPlan()
    for event in history:
        event(plan)
    assert plan.backlog is backlog


def test_closing_is_remembered() -> None:
    plan = FetchPlan()
    assert not plan.closing
    plan.close()
    assert plan.closing
