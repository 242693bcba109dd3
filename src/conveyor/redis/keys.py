"""The whole Redis key schema: BullMQ's layout plus Conveyor's few additions. No key is built elsewhere.

BullMQ keeps a queue under `<prefix>:<queue>:<suffix>` and a job under `<prefix>:<queue>:<id>` (with
`:lock`, `:logs`, `:dependencies` beside it). Conveyor adds a worker registry and a cancel channel under
`<prefix>:conveyor:*` so that Node BullMQ tools never mistake them for queues.

On a Redis Cluster (`tagged=True`) every key of one queue carries the queue's name as a hash tag:
`bull:{indexing}:wait`, `bull:{indexing}:<job id>`, `bull:conveyor:fetch-lease:{indexing}:<token>`. All of them
hash to one slot, as BullMQ's scripts need (a script may touch only keys of the node it runs on), and different
queues spread over the shards. For Node BullMQ that is the queue named `{indexing}` under prefix `bull`. The keys
shared by every queue (workers, metrics, schedules, tenants, dead letters, API tokens) carry the tag
`{conveyor}`: `bull:{conveyor}:workers`, so the scripts and transactions that combine them stay in one slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

QUEUE_SUFFIXES = (
    "active",
    "wait",
    "waiting-children",
    "paused",
    "completed",
    "failed",
    "delayed",
    "repeat",
    "stalled",
    "limiter",
    "prioritized",
    "id",
    "stalled-check",
    "meta",
    "pc",
    "events",
    "marker",
)


@dataclass(frozen=True)
class QueueKeys:
    """Every key of one queue, in BullMQ's layout; with `tagged`, under the queue's hash tag (for a cluster)."""

    prefix: str
    queue: str
    tagged: bool = False

    @cached_property
    def segment(self) -> str:
        """How the queue's name appears in its keys: `indexing`, or `{indexing}` when tagged."""
        return f"{{{self.queue}}}" if self.tagged else self.queue

    @cached_property
    def base(self) -> str:
        """`<prefix>:<queue>:` — the key prefix BullMQ's scripts take as ARGV (job keys are base + id)."""
        return f"{self.prefix}:{self.segment}:"

    # One property per BullMQ queue structure (`keys.wait`, `keys.waiting_children`, …).
    @property
    def active(self) -> str:
        return self.base + "active"

    @property
    def wait(self) -> str:
        return self.base + "wait"

    @property
    def waiting_children(self) -> str:
        return self.base + "waiting-children"

    @property
    def paused(self) -> str:
        return self.base + "paused"

    @property
    def completed(self) -> str:
        return self.base + "completed"

    @property
    def failed(self) -> str:
        return self.base + "failed"

    @property
    def delayed(self) -> str:
        return self.base + "delayed"

    @property
    def repeat(self) -> str:
        return self.base + "repeat"

    @property
    def stalled(self) -> str:
        return self.base + "stalled"

    @property
    def limiter(self) -> str:
        return self.base + "limiter"

    @property
    def prioritized(self) -> str:
        return self.base + "prioritized"

    @property
    def id(self) -> str:
        return self.base + "id"

    @property
    def stalled_check(self) -> str:
        return self.base + "stalled-check"

    @property
    def meta(self) -> str:
        return self.base + "meta"

    @property
    def pc(self) -> str:
        return self.base + "pc"

    @property
    def events(self) -> str:
        return self.base + "events"

    @property
    def marker(self) -> str:
        return self.base + "marker"

    def of(self, suffix: str) -> str:
        """The key of a queue-level structure by its BullMQ suffix (`wait`, `waiting-children`, …)."""
        if suffix not in QUEUE_SUFFIXES:
            raise ValueError(f"unknown queue key suffix {suffix!r}")
        return self.base + suffix

    def job(self, job_id: str) -> str:
        """The hash holding a job."""
        return self.base + job_id

    def job_scheduler(self, scheduler_id: str) -> str:
        """BullMQ's hash of one job scheduler (its spec and template); the `repeat` zset scores it by next run."""
        return f"{self.base}repeat:{scheduler_id}"

    def lock(self, job_id: str) -> str:
        """The lock of an active job; its value is the owning worker's token."""
        return f"{self.base}{job_id}:lock"

    def fetch_lease(self, token: str) -> str:
        """The lease of a fetch sent behind a blocking wait (Conveyor's: `QueueScripts.wait_then_move_to_active`)."""
        return f"{self.prefix}:conveyor:fetch-lease:{self.segment}:{token}"

    def logs(self, job_id: str) -> str:
        """The list of a job's log lines."""
        return f"{self.base}{job_id}:logs"

    def metrics(self, target: str) -> str:
        """BullMQ's per-minute metrics of `completed` or `failed`."""
        return f"{self.base}metrics:{target}"

    def deduplication(self, dedup_id: str) -> str:
        """The key that holds a deduplication id for its time to live."""
        return f"{self.base}de:{dedup_id}"

    # --- advanced job control (issue 6): BullMQ's flow keys of a parent job ---------------------------------

    @property
    def qualified_name(self) -> str:
        """`<prefix>:<queue>`: how BullMQ names a queue inside a job's `parent` field (`queueKey`)."""
        return f"{self.prefix}:{self.segment}"

    def dependencies(self, job_id: str) -> str:
        """Set of a parent job's pending children (their full job keys)."""
        return f"{self.base}{job_id}:dependencies"

    def processed(self, job_id: str) -> str:
        """Hash of a parent job's completed children: child job key -> its JSON return value."""
        return f"{self.base}{job_id}:processed"

    def failed_children(self, job_id: str) -> str:
        """Hash of a parent's children that failed under continue/ignore: child job key -> failed reason."""
        return f"{self.base}{job_id}:failed"

    def unsuccessful(self, job_id: str) -> str:
        """Sorted set of a parent's children that failed under fail-parent (child job key, by failure time)."""
        return f"{self.base}{job_id}:unsuccessful"

    # --- end of the advanced job control block ----------------------------------------------------------------


@dataclass(frozen=True)
class ConveyorKeys:
    """Keys Conveyor adds beside the queues (worker registry, cancellation); with `tagged` (a cluster), all under
    the hash tag `{conveyor}`, in one slot."""

    prefix: str
    tagged: bool = False

    @cached_property
    def ns(self) -> str:
        """`<prefix>:conveyor`, or `<prefix>:{conveyor}` when tagged: the namespace of the keys below."""
        return f"{self.prefix}:{{conveyor}}" if self.tagged else f"{self.prefix}:conveyor"

    def queue_keys(self, queue: str) -> QueueKeys:
        """The keys of a queue under this prefix, tagged alike."""
        return QueueKeys(self.prefix, queue, self.tagged)

    @property
    def workers(self) -> str:
        """Sorted set of live worker ids, scored by their last heartbeat (Redis server time, ms)."""
        return f"{self.ns}:workers"

    def worker(self, worker_id: str) -> str:
        """JSON describing one worker; expires when its heartbeats stop."""
        return f"{self.ns}:worker:{worker_id}"

    @property
    def cancel_channel(self) -> str:
        """Pub/sub channel announcing `<queue>:<job id>` of jobs asked to cancel."""
        return f"{self.ns}:cancel"

    def cancel_flag(self, queue: str, job_id: str) -> str:
        """Key set while a cancellation request for an active job is pending (survives missed messages)."""
        return f"{self.ns}:cancel:{queue}:{job_id}"

    def rate_group(self, group: str) -> str:
        """Counter of jobs started in the current window of a rate-limit group (expires with the window)."""
        return f"{self.ns}:rate:{group}"

    @property
    def api_tokens(self) -> str:
        """Hash of API tokens: field token id, value JSON with name, role, scopes and the secret's SHA-256."""
        return f"{self.ns}:api-tokens"

    def queue_pattern(self) -> str:
        """SCAN pattern that finds every queue's meta hash (to discover queues)."""
        return f"{self.prefix}:*:meta"

    # --- advanced job control (issue 6): dead letters, schedules, tenants ------------------------------------

    def dead_letters(self, queue: str) -> str:
        """Sorted set of a queue's dead letters: job id, scored by when it was dead-lettered (ms)."""
        return f"{self.ns}:dlq:{queue}"

    def dead_letter_entries(self, queue: str) -> str:
        """Hash of a queue's dead letters: job id -> JSON copy of the job (payload, options, error history)."""
        return f"{self.ns}:dlq:{queue}:entries"

    def dead_letter_sweep(self, queue: str) -> str:
        """String: the finish time (ms) up to which the reconciliation sweep has checked a queue's failed jobs."""
        return f"{self.ns}:dlq:{queue}:swept"

    def dead_letter_sweep_lock(self, queue: str) -> str:
        """Lock key: one worker at a time sweeps a queue's failed jobs."""
        return f"{self.ns}:dlq:{queue}:sweep-lock"

    @property
    def dead_letter_alerts(self) -> str:
        """Sorted set of webhook alerts to send: `<queue>|<job id>|<failed at>`, scored by when to try next (ms)."""
        return f"{self.ns}:dlq-alerts"

    @property
    def dead_letter_alert_attempts(self) -> str:
        """Hash: alert member -> attempts made so far."""
        return f"{self.ns}:dlq-alerts:attempts"

    @property
    def schedules(self) -> str:
        """Legacy (before schedules became BullMQ job schedulers): hash of schedules, key -> JSON spec. Read
        once by the migration (`conveyor.queue.schedule_migration`), then deleted."""
        return f"{self.ns}:schedules"

    @property
    def schedule_ticks(self) -> str:
        """Legacy sorted set: schedule key, scored by its next tick (ms). Deleted by the migration."""
        return f"{self.ns}:schedules:next"

    @property
    def schedule_migration_lock(self) -> str:
        """Lock key held by the one process moving legacy schedules into BullMQ job schedulers."""
        return f"{self.ns}:schedules:migrating"

    @property
    def tenants(self) -> str:
        """Hash of tenants: tenant id -> JSON (quotas, creation time)."""
        return f"{self.ns}:tenants"

    def job_of_key(self, key: str) -> tuple[str, str] | None:
        """`(queue, job id)` of a full job key under this prefix (as flows store children and parents), or None
        for a key of another namespace or not a job key."""
        head = f"{self.prefix}:"
        if not key.startswith(head):
            return None
        queue, sep, job_id = key[len(head) :].rpartition(":")
        if self.tagged:
            if not (queue.startswith("{") and queue.endswith("}")):
                return None
            queue = queue[1:-1]
        if not sep or not queue or not job_id or ":" in queue:
            return None
        return queue, job_id

    def tenant_prefix(self, tenant: str) -> str:
        """The key prefix of a tenant's namespace: its queues live under `<prefix>:t:<tenant>:<queue>:…`."""
        return f"{self.prefix}:t:{tenant}"

    # --- end of the advanced job control block ----------------------------------------------------------------


@dataclass(frozen=True)
class MetricsKeys:
    """`<prefix>:conveyor:metrics:*`: cluster-wide job counters and histograms every worker adds to."""

    conveyor: ConveyorKeys

    @property
    def counters(self) -> str:
        """Hash of job counters; field `<counter>|<queue>|<job type>`, value an integer."""
        return f"{self.conveyor.ns}:metrics:counters"

    def histogram(self, name: str) -> str:
        """Hash of one histogram (`wait`, `run`); fields `b|<bucket>|<queue>|<job type>` (per bucket, not
        cumulative) and `sum|…`."""
        return f"{self.conveyor.ns}:metrics:histogram:{name}"
