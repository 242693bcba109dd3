// Workers page: the live worker processes; a worker that stops beating disappears.

import { h, replace } from '../dom.js';
import { ago, count, duration } from '../format.js';
import { WORKERS_SUBSCRIPTION } from '../live.js';
import { describeError, note } from '../ui.js';

export function render(ctx) {
  const { client, main } = ctx;
  const summary = h('p', { class: 'summary' });
  const box = h('div', { class: 'table-wrap panel' }, note('Waiting for the worker list…'));
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Workers'), summary), box);
  let workers = [];

  function draw() {
    summary.textContent = `${workers.length} live worker${workers.length === 1 ? '' : 's'}`;
    if (!workers.length) {
      replace(box, note('No worker is running. Start one with `conveyor worker` or `conveyor up`.'));
      return;
    }
    const now = Date.now();
    const rows = workers.map((w) => {
      const active = w.queues.reduce((sum, q) => sum + q.active, 0);
      const slots = w.queues.reduce((sum, q) => sum + q.concurrency, 0);
      return h('tr', { dataset: { worker: w.id } },
        h('th', { scope: 'row' }, w.name, w.runtime === 'bullmq' ? h('span', { class: 'badge', title: 'A Node BullMQ worker (no heartbeat: counts are not published)' }, ' Node BullMQ') : null),
        h('td', {}, w.host), h('td', { class: 'num' }, w.runtime === 'bullmq' ? '-' : String(w.pid)),
        h('td', {}, h('ul', { class: 'inline-list' }, w.queues.map((q) => h('li', {},
          h('a', { href: `#/queues/${encodeURIComponent(q.name)}` }, q.name), ` ${q.active}/${q.concurrency}`)))),
        h('td', { class: 'num' }, `${active}/${slots}`), h('td', { class: 'num' }, count(w.processed)),
        h('td', { class: 'num', dataset: { since: w.startedAt } }, duration(now - new Date(w.startedAt).getTime())),
        h('td', { class: 'num', dataset: { beat: w.lastBeat } }, ago(w.lastBeat, now)));
    });
    replace(box, h('table', { class: 'table workers-table' },
      h('caption', { class: 'visually-hidden' }, 'Live workers'),
      h('thead', {}, h('tr', {}, ['Name', 'Host', 'PID', 'Queues (active/slots)', 'Active jobs', 'Processed', 'Uptime', 'Last heartbeat']
        .map((label, i) => h('th', { scope: 'col', class: i === 2 || i > 3 ? 'num' : null }, label)))),
      h('tbody', {}, rows)));
  }

  const sub = client.subscribe(WORKERS_SUBSCRIPTION, {}, {
    live: true,
    next: (data) => {
      workers = data.workers;
      draw();
    },
    error: (error) => replace(box, note(describeError(error), 'error')),
  });
  // Uptimes and heartbeat ages tick locally; only those cells change, so focus and selection stay put.
  const ticker = setInterval(() => {
    const now = Date.now();
    for (const cell of box.querySelectorAll('[data-since]')) cell.textContent = duration(now - new Date(cell.dataset.since).getTime());
    for (const cell of box.querySelectorAll('[data-beat]')) cell.textContent = ago(cell.dataset.beat, now);
  }, 1000);
  return () => {
    sub.close();
    clearInterval(ticker);
  };
}
