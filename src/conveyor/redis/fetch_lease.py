"""The lease of a fetch sent behind the fetcher's blocking wait: Redis runs that fetch only while it holds.

An idle fetcher sends BullMQ's `moveToActive` right behind its BZPOPMIN, and Redis runs it whenever the wait
returns, even when the process that sent it has stopped since (SIGSTOP, a blocked event loop, a paused VM): the
job is then locked to a worker that cannot run it, waits for the lock to lapse and counts a stall. A stall too
many fails it for good; a job that was running on that same worker when it stopped, and is requeued by the
stalled check, would be taken back by its queued fetch, and stall again.

So the fetch is leased: a key set with a TTL of half the lock duration and WATCHed before the wait, the fetch
sent inside MULTI/EXEC after it. A watched key that expires aborts EXEC, so the fetch runs only within half a
lock of the moment the worker was last seen alive; the jobs of a stopped worker are requeued no sooner than
two thirds of a lock after it stopped (their locks are renewed every third), so its fetch can never take them
back. A wait that outlasts the lease takes nothing: the script sent after it puts back the wake-up marker the
wait consumed when jobs are waiting (or a delayed one is due later), so the other workers are woken as BullMQ's
own scripts would have, and a live fetcher simply fetches again.

This rests on EXEC failing when a watched key has expired, as current Redis does (tested on 8.2). On a server
that does not, the lease does not fence, and the check at the job's start (`conveyor.worker.fencing`) remains.
"""

from __future__ import annotations

from conveyor.redis.keys import QueueKeys
from conveyor.redis.lane import Lease

# KEYS: lease, marker, wait, prioritized, delayed. Ends the lease; if it had lapsed (the fetch did not run), puts
# back the marker for jobs that wait, or the delayed marker (member "1", scored with the next due time, as
# BullMQ's `addDelayMarkerIfNeeded` does; delayed scores are due time * 0x1000 + a counter).
RESTORE_MARKER = """
if redis.call("DEL", KEYS[1]) == 1 then
  return 1
end
if redis.call("LLEN", KEYS[3]) > 0 or redis.call("ZCARD", KEYS[4]) > 0 then
  redis.call("ZADD", KEYS[2], 0, "0")
else
  local due = redis.call("ZRANGE", KEYS[5], 0, 0, "WITHSCORES")
  if due[2] then
    redis.call("ZADD", KEYS[2], math.floor(tonumber(due[2]) / 0x1000), "1")
  end
end
return 0
"""


def fetch_lease(keys: QueueKeys, token: str, lease_ms: int) -> Lease:
    """The lease of one fetch behind a wait, named by its lock token."""
    key = keys.fetch_lease(token)
    return Lease(
        key, lease_ms, ("EVAL", RESTORE_MARKER, 5, key, keys.marker, keys.wait, keys.prioritized, keys.delayed)
    )
