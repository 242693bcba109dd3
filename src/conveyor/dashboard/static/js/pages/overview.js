// Overview: every queue with live counts, paused badge, throughput and failure sparklines, and its workers.

import { flash, h, replace, setText } from '../dom.js';
import { count, percent, rate } from '../format.js';
import { sparkline } from '../charts.js';
import { STATS_SUBSCRIPTION, THROUGHPUT_SUBSCRIPTION, ThroughputHistory, WORKERS_SUBSCRIPTION, workersOf } from '../live.js';
import { QUEUE_FIELDS, STATES, describeError, note, pausedBadge } from '../ui.js';
import { redisPanel } from '../redis.js';

const QUEUES_QUERY = `query Overview { queues { ${QUEUE_FIELDS} } }`;

function card(queue) {
  const headingId = `queue-${queue.name}`;
  const counts = STATES.map((state) => h('div', { class: `count count-${state.key}` },
    h('dt', {}, h('a', { href: `#/queues/${encodeURIComponent(queue.name)}?tab=${state.key}` }, state.label)),
    h('dd', { dataset: { field: state.field } }, '0')));
  const el = h('article', { class: 'queue-card panel', dataset: { queue: queue.name }, 'aria-labelledby': headingId },
    h('header', { class: 'queue-card-head' },
      h('h2', { id: headingId }, h('a', { href: `#/queues/${encodeURIComponent(queue.name)}` }, queue.name)),
      h('span', { class: 'badge-slot' })),
    h('dl', { class: 'counts' }, counts),
    h('div', { class: 'rates' },
      h('div', { class: 'rate' },
        h('span', { class: 'rate-label', id: `${headingId}-rate`, title: 'Jobs finished per second over the last minute' }, 'Jobs/s'),
        h('span', { class: 'rate-value', dataset: { rate: 'jobs' } }, '—'),
        h('span', { class: 'spark-slot', dataset: { spark: 'jobs' } })),
      h('div', { class: 'rate' },
        h('span', { class: 'rate-label' }, 'Failure rate'),
        h('span', { class: 'rate-value', dataset: { rate: 'failure' } }, '–'),
        h('span', { class: 'spark-slot', dataset: { spark: 'failure' } }))),
    h('footer', { class: 'queue-card-foot' },
      h('span', { class: 'workers-line', dataset: { workers: '' } }, 'Workers: …'),
      h('p', { class: 'warning', role: 'status', hidden: true, dataset: { warning: '' } })));
  return { el, queue, history: new ThroughputHistory() };
}

function pending(queue) {
  return queue.waiting + queue.delayed + queue.active;
}

export function render(ctx) {
  const { client, main } = ctx;
  const summary = h('p', { class: 'summary', 'aria-live': 'off' });
  const grid = h('div', { class: 'queue-grid' }, note('Loading queues…'));
  const redis = redisPanel(client);
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Queues'), summary), grid, redis.el);
  const cards = new Map();
  const subs = [];
  let workers = null;

  function updateCounts(entry, queue, animate) {
    entry.queue = queue;
    for (const state of STATES) {
      const el = entry.el.querySelector(`[data-field="${state.field}"]`);
      if (setText(el, count(queue[state.field])) && animate) flash(el.parentElement);
    }
    replace(entry.el.querySelector('.badge-slot'), queue.isPaused ? pausedBadge() : null);
    entry.el.classList.toggle('is-paused', queue.isPaused);
    updateWorkers(entry);
  }

  function updateWorkers(entry) {
    if (workers === null) return;
    const { count: n, slots, active } = workersOf(workers, entry.queue.name);
    const line = entry.el.querySelector('[data-workers]');
    line.textContent = n === 0 ? 'No workers' : `${n} worker${n === 1 ? '' : 's'} · ${active}/${slots} slots busy`;
    const warning = entry.el.querySelector('[data-warning]');
    const waiting = pending(entry.queue);
    warning.hidden = !(n === 0 && waiting > 0);
    warning.textContent = warning.hidden ? '' : `${count(waiting)} jobs are waiting but no worker serves this queue.`;
    entry.el.classList.toggle('has-warning', !warning.hidden);
  }

  function updateRates(entry) {
    const { history } = entry;
    const points = history.points();
    const jobs = history.jobsPerSecond();
    const failure = history.failureRate();
    setText(entry.el.querySelector('[data-rate="jobs"]'), rate(jobs));
    setText(entry.el.querySelector('[data-rate="failure"]'), Number.isNaN(failure) ? '–' : percent(failure));
    replace(entry.el.querySelector('[data-spark="jobs"]'), sparkline(points.map((p) => p.rate),
      { label: `${entry.queue.name}: jobs per second over the last minutes`, kind: 'jobs' }));
    replace(entry.el.querySelector('[data-spark="failure"]'), sparkline(points.map((p) => p.failure),
      { label: `${entry.queue.name}: failure rate over the last minutes`, max: 1, kind: 'failure' }));
    updateSummary();
  }

  function updateSummary() {
    // Unknown (NaN) until every queue's first sample is in: a partial sum would understate it.
    const total = [...cards.values()].reduce((sum, entry) => sum + entry.history.jobsPerSecond(), 0);
    const nWorkers = workers === null ? '…' : workers.length;
    summary.textContent = `${cards.size} queue${cards.size === 1 ? '' : 's'} · ${nWorkers} worker${nWorkers === 1 ? '' : 's'} · ${rate(total)} jobs/s (last minute)`;
  }

  function follow(entry) {
    const variables = { queue: entry.queue.name };
    subs.push(client.subscribe(STATS_SUBSCRIPTION, variables, {
      live: true,
      next: (data) => updateCounts(entry, data.queueStats, true),
    }));
    subs.push(client.subscribe(THROUGHPUT_SUBSCRIPTION, { ...variables, interval: 2 }, {
      live: true,
      next: (data) => {
        entry.history.add(data.queueThroughput);
        updateRates(entry);
      },
    }));
  }

  async function load() {
    let data;
    try {
      data = await client.request(QUEUES_QUERY);
    } catch (error) {
      if (cards.size === 0) replace(grid, note(`Cannot load the queues: ${describeError(error)}`, 'error'));
      return;
    }
    if (cards.size === 0) replace(grid);
    if (data.queues.length === 0) replace(grid, note('This token may see no queue.'));
    for (const queue of data.queues) {
      let entry = cards.get(queue.name);
      if (!entry) {
        entry = card(queue);
        cards.set(queue.name, entry);
        grid.append(entry.el);
        updateRates(entry);
        follow(entry);
      }
      updateCounts(entry, queue, false);
    }
    updateSummary();
  }

  subs.push(client.subscribe(WORKERS_SUBSCRIPTION, {}, {
    live: true,
    next: (data) => {
      workers = data.workers;
      for (const entry of cards.values()) updateWorkers(entry);
      updateSummary();
    },
  }));
  load();
  redis.load();
  ctx.onReconnect(() => {
    load();
    redis.load();
  });
  return () => subs.forEach((sub) => sub.close());
}
