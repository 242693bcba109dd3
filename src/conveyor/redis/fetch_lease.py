"""The lease of a fetch sent behind the fetcher's blocking wait: Redis runs that fetch only while it holds.

An idle fetcher sends BullMQ's `moveToActive` right behind its BZPOPMIN, and Redis runs it whenever the wait
returns, even when the process that sent it has stopped since (SIGSTOP, a blocked event loop, a paused VM): the
job is then locked to a worker that cannot run it, waits for the lock to lapse and counts a stall. A stall too
many fails it for good; a job that was running on that same worker when it stopped, and is requeued by the
stalled check, would be taken back by its queued fetch, and stall again.

So the fetch is leased: a key set with a TTL of half the lock duration before the wait, and the fetch sent after
it is BullMQ's `moveToActive` behind a check of that key (`with_lease_check`), in the same script: it runs only
if the key still lives, so only within half a lock of the moment the worker was last seen alive; the jobs of a
stopped worker are requeued no sooner than two thirds of a lock after it stopped (their locks are renewed every
third), so its fetch can never take them back. A wait that outlasts the lease takes nothing: the check puts back
the wake-up marker the wait consumed when jobs are waiting (or a delayed one is due later), so the other workers
are woken as BullMQ's own scripts would have, and a live fetcher simply fetches again.

The check is in the script rather than a WATCH of the key with the fetch in MULTI/EXEC and a script after it to
end the lease: that cost four more Redis commands for every job an idle worker takes (WATCH, MULTI, EXEC and
the script) than the two the lease needs (the write that starts it, the read that ends it).
"""

from __future__ import annotations

# Before BullMQ's moveToActive, whose KEYS (1 wait, 3 prioritized, 7 delayed, 11 marker) it reads; KEYS[12] is the
# lease. Ends the lease; if it had lapsed, takes nothing (returns 0) and puts back the marker for jobs that wait,
# or the delayed marker (member "1", scored with the next due time, as BullMQ's `addDelayMarkerIfNeeded` does;
# delayed scores are due time * 0x1000 + a counter).
LEASE_CHECK = """
-- Conveyor's fetch lease (conveyor.redis.fetch_lease), then BullMQ's moveToActive.
if redis.call("DEL", KEYS[12]) == 0 then
  if redis.call("LLEN", KEYS[1]) > 0 or redis.call("ZCARD", KEYS[3]) > 0 then
    redis.call("ZADD", KEYS[11], 0, "0")
  else
    local due = redis.call("ZRANGE", KEYS[7], 0, 0, "WITHSCORES")
    if due[2] then
      redis.call("ZADD", KEYS[11], math.floor(tonumber(due[2]) / 0x1000), "1")
    end
  end
  return 0
end
"""


def with_lease_check(move_to_active: str) -> str:
    """BullMQ's `moveToActive` source behind the lease check: called with the lease's key after its own KEYS."""
    return LEASE_CHECK + move_to_active
