// Live data shared by pages: subscription documents and the per-queue throughput history.

import { QUEUE_FIELDS } from './ui.js';

export const STATS_SUBSCRIPTION = `subscription Stats($queue: String!) { queueStats(queueName: $queue) { ${QUEUE_FIELDS} } }`;
export const THROUGHPUT_SUBSCRIPTION = `subscription Throughput($queue: String!, $interval: Float!) {
  queueThroughput(queue: $queue, interval: $interval) { start end completed failed }
}`;
export const WORKERS_SUBSCRIPTION = `subscription Workers {
  workers { id name host pid processed startedAt lastBeat runtime queues { name concurrency active } }
}`;

/** Samples of finished jobs per interval, kept for a few minutes: current rates and sparkline series. */
export class ThroughputHistory {
  constructor({ keep = 150, bucket = 2 } = {}) {
    this.samples = [];
    this.keep = keep; // samples (2 s each: 5 minutes)
    this.bucket = bucket; // samples per sparkline point (4 s)
  }

  add(sample) {
    const seconds = (new Date(sample.end) - new Date(sample.start)) / 1000;
    this.samples.push({ completed: sample.completed, failed: sample.failed, seconds: Math.max(seconds, 0.001) });
    if (this.samples.length > this.keep) this.samples.shift();
  }

  window(n) {
    const recent = this.samples.slice(-n);
    const completed = recent.reduce((sum, x) => sum + x.completed, 0);
    const failed = recent.reduce((sum, x) => sum + x.failed, 0);
    const seconds = recent.reduce((sum, x) => sum + x.seconds, 0);
    return { completed, failed, seconds };
  }

  /** Jobs finished per second over the last `seconds` (a minute; less while the page is younger than that);
   * NaN until the first sample arrives, since no rate is known yet. */
  jobsPerSecond(seconds = 60) {
    let finished = 0;
    let covered = 0;
    for (let i = this.samples.length - 1; i >= 0 && covered < seconds; i -= 1) {
      finished += this.samples[i].completed + this.samples[i].failed;
      covered += this.samples[i].seconds;
    }
    return covered > 0 ? finished / covered : Number.NaN;
  }

  /** The share of finished jobs that failed over the last minute (NaN when none finished). */
  failureRate(n = 30) {
    const { completed, failed } = this.window(n);
    return completed + failed > 0 ? failed / (completed + failed) : Number.NaN;
  }

  points() {
    const out = [];
    // Grouped from the newest sample back, so the last point is always the latest few seconds.
    for (let end = this.samples.length; end > 0; end -= this.bucket) {
      const group = this.samples.slice(Math.max(0, end - this.bucket), end);
      const completed = group.reduce((sum, x) => sum + x.completed, 0);
      const failed = group.reduce((sum, x) => sum + x.failed, 0);
      const seconds = group.reduce((sum, x) => sum + x.seconds, 0);
      out.unshift({ rate: (completed + failed) / seconds, failure: completed + failed ? failed / (completed + failed) : 0 });
    }
    return out;
  }
}

/** Workers serving a queue, with their slots and running jobs there. */
export function workersOf(workers, queue) {
  const serving = workers.filter((w) => w.queues.some((q) => q.name === queue));
  const slots = serving.reduce((sum, w) => sum + w.queues.find((q) => q.name === queue).concurrency, 0);
  const active = serving.reduce((sum, w) => sum + w.queues.find((q) => q.name === queue).active, 0);
  return { count: serving.length, slots, active };
}
