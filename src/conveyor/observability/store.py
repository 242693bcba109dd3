"""Cluster-wide job metrics in Redis: every worker adds its counts (HINCRBY), any process reads the totals.

Counters and histogram buckets are plain integers in two kinds of hashes (see `MetricsKeys`), so a scrape of
one process sees exact totals over every worker that ever ran, and Redis survives worker restarts. Histogram
buckets are stored per bucket (not cumulative) and cumulated when read.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis

from conveyor.redis.cluster import is_cluster
from conveyor.redis.keys import ConveyorKeys, MetricsKeys

COUNTERS = ("completed", "failed", "retried", "stalled", "dead_lettered")
# Wait time spans milliseconds (idle workers) to hours (a backlog); run time, milliseconds to the 30-minute jobs.
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, math.inf)
RUN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, math.inf)
HISTOGRAMS: dict[str, tuple[float, ...]] = {"wait": WAIT_BUCKETS, "run": RUN_BUCKETS}
SEP = "|"  # queue names cannot contain it; a job type may, so the job type is always the last part

Series = tuple[str, str]  # (queue, job type)


def bucket_label(bound: float) -> str:
    """A bucket bound as Prometheus writes `le` (`0.005`, `1.0`, `+Inf`)."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


class BucketCounts:
    """One histogram series being counted: observations per bucket of `bounds` (not cumulative; the last bound
    is infinite), and their sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one value in the first bucket whose bound holds it (a negative one, from a clock step, as 0)."""
        if value < 0.0:
            value = 0.0
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, int]]:
        """`(le, count)` pairs, as Prometheus has them: each bucket counts the values of those before it too."""
        total, pairs = 0, []
        for bound, count in zip(self.bounds, list(self.counts), strict=True):
            total += count
            pairs.append((bucket_label(bound), total))
        return pairs

    def copy(self) -> BucketCounts:
        """The counts as they are now."""
        copied = BucketCounts(self.bounds)
        copied.counts = list(self.counts)
        copied.sum = self.sum
        return copied

    def minus(self, earlier: BucketCounts) -> BucketCounts:
        """What was observed since `earlier`, a copy of this series taken before."""
        gain = BucketCounts(self.bounds)
        gain.counts = [now - then for now, then in zip(self.counts, earlier.counts, strict=True)]
        gain.sum = self.sum - earlier.sum
        return gain

    @property
    def count(self) -> int:
        """How many values were observed."""
        return sum(self.counts)


COUNTED = frozenset(("completed", "retried", "failed"))  # the outcomes counted in Redis (and timed)


class SeriesCounts:
    """Everything one process counted of one (queue, job type) since it started: attempts by outcome, wait and
    run time, and the stalled jobs it requeued. Cumulative: a write to Redis sends what they gained since the
    last one (`MetricDeltas.add_gain`)."""

    __slots__ = ("outcomes", "run", "stalled", "wait")

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = {}  # every outcome, COUNTED or not
        self.wait = BucketCounts(WAIT_BUCKETS)
        self.run = BucketCounts(RUN_BUCKETS)  # attempts of the COUNTED outcomes
        self.stalled = 0

    def copy(self) -> SeriesCounts:
        """The counts as they are now."""
        copied = SeriesCounts()
        copied.outcomes = dict(self.outcomes)
        copied.wait = self.wait.copy()
        copied.run = self.run.copy()
        copied.stalled = self.stalled
        return copied


@dataclass
class MetricDeltas:
    """Counts to add to Redis in one write."""

    counters: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (counter, queue, type)
    histograms: dict[str, dict[Series, BucketCounts]] = field(default_factory=lambda: {name: {} for name in HISTOGRAMS})

    def count(self, counter: str, queue: str, job_type: str, n: int = 1) -> None:
        """Add `n` to a job counter."""
        self.counters[(counter, queue, job_type)] += n

    def add_gain(self, series: Series, now: SeriesCounts, before: SeriesCounts | None) -> None:
        """Add what a series gained since `before` (a copy of it taken at the last write; None: never written).
        A final failure counts as dead-lettered too: every worker's dead-letter keeper copies it to the DLQ."""
        before = before or SeriesCounts()
        for outcome in sorted(COUNTED):
            n = now.outcomes.get(outcome, 0) - before.outcomes.get(outcome, 0)
            if n:
                self.count(outcome, *series, n)
                if outcome == "failed":
                    self.count("dead_lettered", *series, n)
        if now.stalled != before.stalled:
            self.count("stalled", *series, now.stalled - before.stalled)
        for name, counts, earlier in (("wait", now.wait, before.wait), ("run", now.run, before.run)):
            gain = counts.minus(earlier)
            if gain.count:
                self.histograms[name][series] = gain

    def __bool__(self) -> bool:
        return bool(self.counters) or any(self.histograms.values())


@dataclass(frozen=True)
class HistogramData:
    """One histogram series: cumulative `(le, count)` pairs ending with `+Inf`, and the sum of observations."""

    buckets: list[tuple[str, int]]
    sum: float

    @property
    def count(self) -> int:
        """How many observations."""
        return self.buckets[-1][1] if self.buckets else 0


@dataclass(frozen=True)
class StoredMetrics:
    """The totals read from Redis."""

    counters: dict[Series, dict[str, int]]
    histograms: dict[str, dict[Series, HistogramData]]


class MetricsStore:
    """Writes counts to, and reads totals from, the metrics hashes."""

    def __init__(self, client: Callable[[], Redis], keys: MetricsKeys) -> None:
        self._client = client  # a getter: an app's client exists only once the app is connected
        self._keys = keys

    @property
    def keys(self) -> MetricsKeys:
        """The metrics keys, hash-tagged when the client (known once connected) is a cluster's."""
        conveyor = self._keys.conveyor
        tagged = is_cluster(self.client)
        return self._keys if conveyor.tagged == tagged else MetricsKeys(ConveyorKeys(conveyor.prefix, tagged))

    @property
    def client(self) -> Redis:
        """The Redis client to use."""
        return self._client()

    async def write(self, deltas: MetricDeltas) -> None:
        """Add a batch of counts, all or nothing (MULTI/EXEC)."""
        pipe = self.client.pipeline(transaction=True)
        for (counter, queue, job_type), n in deltas.counters.items():
            pipe.hincrby(self.keys.counters, SEP.join((counter, queue, job_type)), n)
        for name, series in deltas.histograms.items():
            key = self.keys.histogram(name)
            for (queue, job_type), counts in series.items():
                for bound, n in zip(counts.bounds, counts.counts, strict=True):
                    if n:
                        pipe.hincrby(key, SEP.join(("b", bucket_label(bound), queue, job_type)), n)
                pipe.hincrbyfloat(key, SEP.join(("sum", queue, job_type)), counts.sum)
        await pipe.execute()

    async def read(self) -> StoredMetrics:
        """Every counter and histogram series recorded so far."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.keys.counters)
        for name in HISTOGRAMS:
            pipe.hgetall(self.keys.histogram(name))
        counter_fields, *histogram_fields = await pipe.execute()
        histograms = {
            name: _parse_histogram(fields, HISTOGRAMS[name])
            for name, fields in zip(HISTOGRAMS, histogram_fields, strict=True)
        }
        return StoredMetrics(_parse_counters(counter_fields), histograms)


def _parse_counters(fields: dict[str, str]) -> dict[Series, dict[str, int]]:
    series: dict[Series, dict[str, int]] = {}
    for name, value in fields.items():
        counter, queue, job_type = name.split(SEP, 2)
        if counter in COUNTERS:
            series.setdefault((queue, job_type), dict.fromkeys(COUNTERS, 0))[counter] = int(value)
    return series


def _parse_histogram(fields: dict[str, str], bounds: Sequence[float]) -> dict[Series, HistogramData]:
    counts: defaultdict[Series, Counter[str]] = defaultdict(Counter)
    sums: defaultdict[Series, float] = defaultdict(float)
    for name, value in fields.items():
        if name.startswith("b" + SEP):
            _, le, queue, job_type = name.split(SEP, 3)
            counts[(queue, job_type)][le] += int(value)
        elif name.startswith("sum" + SEP):
            _, queue, job_type = name.split(SEP, 2)
            sums[(queue, job_type)] = float(value)
    result: dict[Series, HistogramData] = {}
    for series, per_bucket in counts.items():
        histogram = BucketCounts(bounds)
        histogram.counts = [per_bucket[bucket_label(bound)] for bound in bounds]
        result[series] = HistogramData(histogram.cumulative(), sums[series])
    return result
