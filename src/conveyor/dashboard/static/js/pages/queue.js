// Queue page: live counts, pause/resume, retry all failed, clear, throughput chart and percentiles, job list.

import { h, replace } from '../dom.js';
import { count, duration, rate, time } from '../format.js';
import { throughputChart } from '../charts.js';
import { STATS_SUBSCRIPTION, THROUGHPUT_SUBSCRIPTION, ThroughputHistory } from '../live.js';
import { QUEUE_FIELDS, confirmDialog, describeError, note, pausedBadge, section, toast } from '../ui.js';
import { jobList } from './joblist.js';
import { addJobDialog, writableQueues } from '../jobform.js';

const QUEUE_QUERY = `query Queue($name: String!) { queue(name: $name) { ${QUEUE_FIELDS} } }`;
const LIMITS_QUERY = `query Limits($name: String!) {
  queue(name: $name) { limits { rateLimit { max durationMs } globalConcurrency } }
}`;

/** The queue-wide limits in force, in words (they bind every worker of the queue, Conveyor's and Node's). */
export function describeLimits(limits) {
  const parts = [];
  if (limits.rateLimit) parts.push(`at most ${count(limits.rateLimit.max)} jobs started per ${duration(limits.rateLimit.durationMs)}`);
  if (limits.globalConcurrency !== null) parts.push(`at most ${count(limits.globalConcurrency)} running at once across all workers`);
  return parts.length ? `Queue-wide limits: ${parts.join('; ')}.` : 'No queue-wide limits.';
}
const METRICS_QUERY = `query Metrics($queue: String!) {
  queueMetrics(queue: $queue, range: LAST_HOUR) {
    completed failed jobsPerSecond truncated
    perMinute { start completed failed }
    waitTime { count p50 p90 p95 p99 max mean }
    runTime { count p50 p90 p95 p99 max mean }
  }
}`;
const CLEAN = `mutation Clean($queue: String!, $state: JobState!, $ms: Int!, $limit: Int!) {
  cleanJobs(queue: $queue, state: $state, olderThanMs: $ms, limit: $limit) { removed }
}`;
const CLEAN_LIMIT = 10000;
const PROMOTE_ALL = 'mutation PromoteAll($queue: String!) { promoteDelayedJobs(queue: $queue) }';
const GRACE_UNITS = { minutes: 60_000, hours: 3_600_000, days: 86_400_000 };
const RETRY_ALL = `mutation RetryAll($queue: String!, $dryRun: Boolean!) {
  retryJobsWhere(queue: $queue, filter: { states: [FAILED] }, dryRun: $dryRun, limit: 10000) {
    matched retried skipped truncated
  }
}`;

function percentileTable(metrics) {
  const columns = ['p50', 'p90', 'p95', 'p99', 'max'];
  const row = (label, stats) => h('tr', {}, h('th', { scope: 'row' }, label),
    columns.map((c) => h('td', { class: 'num' }, stats.count ? duration(stats[c]) : '–')),
    h('td', { class: 'num' }, count(stats.count)));
  return h('table', { class: 'table compact percentiles' },
    h('caption', { class: 'visually-hidden' }, 'Wait and run time percentiles over the last hour'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Time'), columns.map((c) => h('th', { scope: 'col', class: 'num' }, c)),
      h('th', { scope: 'col', class: 'num' }, 'jobs'))),
    h('tbody', {}, row('Wait (due → started)', metrics.waitTime), row('Run (started → finished)', metrics.runTime)));
}

class Throughput {
  constructor(client, queue) {
    this.client = client;
    this.queue = queue;
    this.minutes = null;
    this.recent = new ThroughputHistory();
    this.chart = h('div', { class: 'chart-box' }, note('Loading the last hour…'));
    this.table = h('div', { class: 'percentile-box' });
    this.caption = h('p', { class: 'help' });
    this.el = section('Throughput, last hour',
      h('div', { class: 'legend', 'aria-hidden': 'true' },
        h('span', { class: 'key key-completed' }, 'completed'), h('span', { class: 'key key-failed' }, 'failed')),
      this.chart, this.caption, this.table,
      h('button', { type: 'button', class: 'button subtle', onclick: () => this.load() }, 'Refresh metrics'));
  }

  async load() {
    try {
      const { queueMetrics: m } = await this.client.request(METRICS_QUERY, { queue: this.queue });
      this.minutes = m.perMinute.slice(-60);
      this.metrics = m;
      this.draw();
      replace(this.table, percentileTable(m));
    } catch (error) {
      replace(this.chart, note(`Cannot load metrics: ${describeError(error)}`, 'error'));
    }
  }

  /** Add live counts (from the queue's events) into the current minute. */
  add(sample) {
    this.recent.add(sample);
    if (!this.minutes) return;
    const minuteStart = new Date(sample.end);
    minuteStart.setSeconds(0, 0);
    let last = this.minutes[this.minutes.length - 1];
    if (!last || new Date(last.start) < minuteStart) {
      last = { start: minuteStart.toISOString(), completed: 0, failed: 0 };
      this.minutes.push(last);
      if (this.minutes.length > 60) this.minutes.shift();
    }
    last.completed += sample.completed;
    last.failed += sample.failed;
    this.draw();
  }

  draw() {
    const done = this.minutes.reduce((sum, m) => sum + m.completed, 0);
    const failed = this.minutes.reduce((sum, m) => sum + m.failed, 0);
    replace(this.chart, throughputChart(this.minutes, { title: `${this.queue}: jobs finished per minute` }));
    const note2 = this.metrics.truncated ? ' More jobs finished than were examined.' : '';
    this.caption.textContent = `Now: ${rate(this.recent.jobsPerSecond())} jobs/s over the last minute. `
      + `Last hour: ${count(done)} completed, ${count(failed)} failed — from the finished jobs the queue retains, `
      + `updated live; percentiles as of ${time(new Date().toISOString())}.${note2}`;
  }
}

export function render(ctx, { queue }) {
  const { client, main, perms } = ctx;
  const badge = h('span', { class: 'badge-slot' });
  const pauseButton = h('button', { type: 'button', class: 'button', hidden: true }, 'Pause');
  const retryAllButton = h('button', { type: 'button', class: 'button' }, 'Retry all failed');
  const clearButton = h('button', { type: 'button', class: 'button danger' }, 'Clear queue…');
  const addButton = h('button', { type: 'button', class: 'button primary' }, 'Add job…');
  const promoteAllButton = h('button', { type: 'button', class: 'button' }, 'Promote all delayed');
  const cleanButton = h('button', { type: 'button', class: 'button' }, 'Clean…');
  const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Queue actions' },
    h('a', { class: 'button subtle', href: `#/dead-letters/${encodeURIComponent(queue)}` }, 'Dead letters'));
  if (perms.can('OPERATOR', queue)) actions.append(addButton, pauseButton, retryAllButton, promoteAllButton, cleanButton);
  if (perms.can('ADMIN', queue)) actions.append(clearButton);
  const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Queues'), ' / ', queue);
  const limitsLine = h('p', { class: 'help queue-limits', 'data-testid': 'queue-limits' }, 'Queue-wide limits: …');
  main.append(crumbs, h('div', { class: 'page-head' }, h('h1', {}, queue, ' ', badge), actions), limitsLine);
  client.request(LIMITS_QUERY, { name: queue })
    .then(({ queue: q }) => { limitsLine.textContent = q ? describeLimits(q.limits) : ''; })
    .catch((error) => { limitsLine.textContent = `Cannot read the queue's limits: ${describeError(error)}`; });
  let state = null;
  const throughput = new Throughput(client, queue);
  const list = jobList(ctx, queue);
  main.append(list.el, throughput.el);

  function show(q) {
    state = q;
    replace(badge, q.isPaused ? pausedBadge() : null);
    pauseButton.hidden = false;
    pauseButton.textContent = q.isPaused ? 'Resume' : 'Pause';
    pauseButton.setAttribute('aria-label', q.isPaused ? `Resume queue ${queue}` : `Pause queue ${queue}`);
    retryAllButton.disabled = q.failed === 0;
    promoteAllButton.disabled = q.delayed === 0;
    cleanButton.disabled = q.completed === 0 && q.failed === 0;
    list.counts(q);
  }

  pauseButton.addEventListener('click', async () => {
    const paused = state?.isPaused;
    const mutation = paused ? 'mutation ($name: String!) { resumeQueue(name: $name) }' : 'mutation ($name: String!) { pauseQueue(name: $name) }';
    try {
      await client.request(mutation, { name: queue });
      toast(paused ? `Resumed ${queue}.` : `Paused ${queue}: workers start no new jobs.`);
      await refresh();
    } catch (error) {
      toast(describeError(error), { kind: 'error' });
    }
  });

  retryAllButton.addEventListener('click', async () => {
    try {
      const preview = (await client.request(RETRY_ALL, { queue, dryRun: true })).retryJobsWhere;
      if (preview.matched === 0) {
        toast('No failed jobs to retry.');
        return;
      }
      const more = preview.truncated ? ' (the first 10,000; run it again for the rest)' : '';
      const ok = await confirmDialog({
        title: 'Retry all failed jobs?',
        body: `${count(preview.matched)} failed job${preview.matched === 1 ? '' : 's'} of ${queue} will move back to waiting with fresh attempts${more}.`,
        confirmLabel: `Retry ${count(preview.matched)} jobs`,
      });
      if (!ok) return;
      const done = (await client.request(RETRY_ALL, { queue, dryRun: false })).retryJobsWhere;
      toast(`Retried ${count(done.retried)} jobs${done.skipped ? `; ${count(done.skipped)} had changed state` : ''}.`);
      list.reload();
    } catch (error) {
      toast(describeError(error), { kind: 'error' });
    }
  });

  addButton.addEventListener('click', async () => {
    try {
      const added = await addJobDialog(client, { queues: await writableQueues(client, perms), queue });
      if (added) toast(`Added job ${added.id} to ${added.queue} (${added.state.toLowerCase()}).`);
    } catch (error) {
      toast(describeError(error), { kind: 'error' });
    }
  });

  promoteAllButton.addEventListener('click', async () => {
    const n = state?.delayed ?? 0;
    const ok = await confirmDialog({
      title: 'Promote all delayed jobs?',
      body: `${count(n)} delayed job${n === 1 ? '' : 's'} of ${queue} will run now instead of at their set time, each keeping its priority.`,
      confirmLabel: 'Promote all',
    });
    if (!ok) return;
    try {
      const promoted = (await client.request(PROMOTE_ALL, { queue })).promoteDelayedJobs;
      toast(`Promoted ${count(promoted)} delayed job${promoted === 1 ? '' : 's'}.`);
      list.reload();
    } catch (error) {
      toast(describeError(error), { kind: 'error' });
    }
  });

  cleanButton.addEventListener('click', async () => {
    const which = h('select', { id: 'clean-state' },
      h('option', { value: 'COMPLETED' }, 'completed'), h('option', { value: 'FAILED' }, 'failed'));
    const amount = h('input', { type: 'number', id: 'clean-age', min: 0, step: 1, value: 1, inputmode: 'numeric' });
    const unit = h('select', { id: 'clean-unit', 'aria-label': 'Unit' },
      Object.keys(GRACE_UNITS).map((name) => h('option', { value: name, selected: name === 'hours' }, name)));
    const ok = await confirmDialog({
      title: `Clean ${queue}`,
      body: h('p', {}, 'Delete finished jobs older than a grace period (0 deletes them all). Dead letters are kept.'),
      confirmLabel: 'Delete them',
      danger: true,
      extra: h('div', { class: 'clean-fields' },
        h('div', { class: 'field' }, h('label', { for: 'clean-state' }, 'Jobs'), which),
        h('div', { class: 'field' }, h('label', { for: 'clean-age' }, 'Finished more than'), h('span', { class: 'inline' }, amount, ' ', unit, ' ago'))),
    });
    if (!ok) return;
    const age = Number(amount.value);
    if (!Number.isFinite(age) || age < 0) {
      toast('The grace period must be 0 or more.', { kind: 'error' });
      return;
    }
    try {
      const ms = Math.round(age * GRACE_UNITS[unit.value]);
      const { removed } = (await client.request(CLEAN, { queue, state: which.value, ms, limit: CLEAN_LIMIT })).cleanJobs;
      const more = removed === CLEAN_LIMIT ? ' There may be more: clean again.' : '';
      toast(`Deleted ${count(removed)} ${which.value.toLowerCase()} job${removed === 1 ? '' : 's'} older than ${age} ${unit.value}.${more}`);
      list.reload();
    } catch (error) {
      toast(describeError(error), { kind: 'error' });
    }
  });

  clearButton.addEventListener('click', async () => {
    const force = h('input', { type: 'checkbox', id: 'clear-force' });
    const ok = await confirmDialog({
      title: `Clear ${queue}?`,
      body: `Every job of ${queue} — waiting, delayed, completed and failed — will be deleted. This cannot be undone.`,
      confirmLabel: 'Delete every job',
      danger: true,
      typed: queue,
      extra: h('p', { class: 'check' }, force, h('label', { for: 'clear-force' }, ' Also delete running jobs (force)')),
    });
    if (!ok) return;
    try {
      await client.request('mutation ($name: String!, $force: Boolean!) { clearQueue(name: $name, force: $force) }',
        { name: queue, force: force.checked });
      toast(`Cleared ${queue}.`);
      list.reload();
    } catch (error) {
      const hint = error.code === 'QUEUE_BUSY' ? ' Tick “force” to delete running jobs too.' : '';
      toast(`${describeError(error)}${hint}`, { kind: 'error' });
    }
  });

  async function refresh() {
    try {
      show((await client.request(QUEUE_QUERY, { name: queue })).queue);
    } catch (error) {
      if (!state) replace(main, note(`Cannot load queue ${queue}: ${describeError(error)}`, 'error'));
    }
    return state;
  }

  const subs = [
    client.subscribe(STATS_SUBSCRIPTION, { queue }, { live: true, next: (data) => show(data.queueStats),
      error: (error) => toast(describeError(error), { kind: 'error' }) }),
    client.subscribe(THROUGHPUT_SUBSCRIPTION, { queue, interval: 2 }, { live: true,
      next: (data) => throughput.add(data.queueThroughput) }),
  ];
  refresh().then((q) => list.start(q));
  throughput.load();
  ctx.onReconnect(() => {
    refresh();
    throughput.load();
    list.reload();
  });
  return () => {
    subs.forEach((sub) => sub.close());
    list.stop();
  };
}
