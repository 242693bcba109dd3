"""What a queue's fetcher does next: the fetch decision as one object, apart from the Redis calls that carry it out.

The fetcher loops: ask `FetchPlan.next_step(now)`, do what it says, tell the plan what happened. The plan never
touches Redis or the event loop, so every path through it is tested with a table of `now` values and events.

- FETCH: `moveToActive` now. After a real wait, a marker means new work: fetching at once is the lowest latency.
  A delayed job that is due, or the end of a rate-limit window, also fetches.
- PROBE: right after a fetch, BullMQ's script has re-added the wake-up marker whether or not jobs remain, so two
  cheap reads (`LLEN wait`, `ZCARD prioritized`) come first instead of an empty `moveToActive` (about ten Redis
  calls). The probe also tells whether there is a backlog, which decides if finishing jobs fetch the next one
  (fetch-next) and if jobs are prefetched (`conveyor.worker.prefetch`).
- WAIT_AND_FETCH: wait for the marker with `moveToActive` sent right behind the blocking wait, in one write:
  Redis takes the job for the fetcher the moment one arrives, a round trip sooner. Only while the fetcher has
  nothing else to decide: not right after a fetch (that marker is most likely the one the script re-added: it is
  probed first), no delayed job to wait for, no rate limit of the worker's own, no priority lanes, no queue-wide
  concurrency (`wait_may_fetch`), and only on a connection that can carry it (a lane).
- WAIT: block on the marker until a wake-up, a nudge, or `due_in_s` (a delayed job's due time, or the end of
  this worker's own rate-limit window).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class FetchAction(Enum):
    """What the fetcher does next (see the module docstring)."""

    FETCH = "fetch"
    PROBE = "probe"
    WAIT_AND_FETCH = "wait-and-fetch"
    WAIT = "wait"


@dataclass(frozen=True, slots=True)
class FetchStep:
    """The fetcher's next step; `due_in_s` (WAIT only): end the wait by then, None: only a wake-up ends it."""

    action: FetchAction
    due_in_s: float | None = None


FETCH = FetchStep(FetchAction.FETCH)
PROBE = FetchStep(FetchAction.PROBE)
WAIT_AND_FETCH = FetchStep(FetchAction.WAIT_AND_FETCH)
WAIT = FetchStep(FetchAction.WAIT)


class FetchPlan:
    """The fetcher's state: when to look for jobs, and how. Times are the runner's clock in ms (`now_ms`)."""

    def __init__(self, *, wait_may_fetch: bool = False) -> None:
        # Whether a wait may carry the fetch at all (the lane, the admission rules, the queue's concurrency): set
        # by the runner once its configuration is final, when it starts.
        self.wait_may_fetch = wait_may_fetch
        self._block_until_ms = 0  # look again at this time (a delayed job, a rate-limit window); 0: no such time
        self._check_now = True  # look for jobs at once on start
        self._just_fetched = False  # the last fetch took a job: a marker now is most likely the script's own
        self._backlog = True  # finishing jobs fetch the next one while the queue has a backlog
        self._closing = False

    @property
    def closing(self) -> bool:
        """True once the runner stopped fetching: no job is started, fetched ahead or fetched next."""
        return self._closing

    @property
    def backlog(self) -> bool:
        """Whether more jobs than one were waiting, as of the last look (a probe, a prefetch)."""
        return self._backlog

    def next_step(self, now_ms: int) -> FetchStep:
        """What to do now."""
        if 0 < self._block_until_ms <= now_ms:
            return FETCH  # a delayed job is due, or a rate-limit window ended
        if self._check_now:
            self._check_now = False
            return PROBE if self._just_fetched else FETCH
        if self._fetches_behind_wait():
            return WAIT_AND_FETCH
        if not self._block_until_ms:
            return WAIT
        return FetchStep(FetchAction.WAIT, max(0.0, (self._block_until_ms - now_ms) / 1000))

    def _fetches_behind_wait(self) -> bool:
        return self.wait_may_fetch and not self._just_fetched and not self._block_until_ms

    # --- what happened ---------------------------------------------------------------------------------

    def fetched(self) -> None:
        """A fetch took a job."""
        self._just_fetched = True

    def came_back_empty(self, now_ms: int, next_delayed_ms: int, rate_limit_delay_ms: int) -> None:
        """A fetch took nothing. It tells when the next delayed job is due (0: none), or, when the queue-wide
        rate limit held it back, how long until the limit's window ends."""
        self._just_fetched = False
        self._block_until_ms = now_ms + rate_limit_delay_ms if rate_limit_delay_ms else next_delayed_ms

    def probed(self, waiting: int) -> None:
        """The probe after a fetch counted `waiting` jobs: fetch at once if there is one, else wait."""
        self._backlog = waiting > 1
        self._just_fetched = False
        self._check_now = waiting > 0

    def rate_limited(self, until_ms: int) -> None:
        """This worker's own rate limit allows no fetch before `until_ms`."""
        self._block_until_ms = until_ms

    def held_back(self) -> None:
        """Only reserved slots are free and no job of reserved priority waits: wait for new work or a freed
        slot (which looks again)."""
        self._block_until_ms = 0

    def woke(self, score: int | None) -> None:
        """A wait ended: the marker's score (0: jobs are waiting; else the time a delayed job is due), or None
        (a timeout or a nudge: look again, a safety net for lost markers)."""
        if not score:
            self._check_now = True
        else:
            self._block_until_ms = min(score, self._block_until_ms) if self._block_until_ms else score

    def look_again(self) -> None:
        """Fetch at the next step whatever the last fetch said (a freed priority slot; a script Redis forgot)."""
        self._check_now = True

    def ran_dry(self) -> None:
        """A fetch ahead (prefetch) found no job or failed: no backlog until a probe finds one again."""
        self._backlog = False

    def close(self) -> None:
        """Stop fetching."""
        self._closing = True
