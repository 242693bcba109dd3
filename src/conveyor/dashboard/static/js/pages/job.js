// Job page: data, options, live progress and logs, result, each failed attempt with its stack trace, timeline.

import { h, replace } from '../dom.js';
import { attempts as attemptsOf, between, dateTime, duration, json, priority } from '../format.js';
import { confirmDialog, describeError, note, section, stateBadge, toast } from '../ui.js';
import { flowSection } from './flow.js';
import { addJobDialog, writableQueues } from '../jobform.js';

const JOB_FIELDS = `id queue type state data options progress attempts maxAttempts priority createdAt processedAt
  finishedAt completedAt failedAt delayedUntil deadline failedReason result worker
  retryHistory { attempt error stacktrace failedAt worker }`;
const JOB_QUERY = `query Job($id: ID!, $queue: String!) { job(id: $id, queue: $queue) { ${JOB_FIELDS} logs(last: 1000) } }`;
const UPDATES = `subscription JobUpdates($id: ID!, $queue: String!) {
  jobUpdates(id: $id, queue: $queue) { event job { ${JOB_FIELDS} } newLogs }
}`;
const FINAL = new Set(['COMPLETED', 'FAILED']);
const PENDING = new Set(['WAITING', 'PAUSED', 'PRIORITIZED', 'DELAYED', 'WAITING_CHILDREN']);

function progressValue(progress) {
  if (typeof progress === 'number') return Math.max(0, Math.min(100, progress));
  if (progress && typeof progress === 'object' && typeof progress.percent === 'number') return progress.percent;
  return null;
}

function timeline(job) {
  const events = [['Created', job.createdAt]];
  if (job.delayedUntil) events.push(['Delayed until', job.delayedUntil]);
  if (job.deadline) events.push(['Deadline', job.deadline]);
  for (const attempt of job.retryHistory.filter((a) => a.failedAt)) { // a Node attempt may have no time
    events.push([`Attempt ${attempt.attempt} failed${attempt.worker ? ` on ${attempt.worker}` : ''}`, attempt.failedAt]);
  }
  const latest = job.state === 'ACTIVE' ? job.attempts + 1 : Math.max(job.attempts, 1);
  if (job.processedAt) events.push([`Attempt ${latest} started`, job.processedAt]);
  if (job.completedAt) events.push(['Completed', job.completedAt]);
  if (job.failedAt) events.push(['Failed', job.failedAt]);
  events.sort((a, b) => new Date(a[1]) - new Date(b[1]));
  return h('ol', { class: 'timeline' }, events.map(([label, at]) => h('li', {},
    h('time', { datetime: at }, dateTime(at)), h('span', {}, label))));
}

function attemptText(job) {
  if (job.state === 'ACTIVE') return `attempt ${attemptsOf(job)}, running`;
  return `${attemptsOf(job)} made`;
}

function facts(job) {
  const wait = job.processedAt ? between(job.createdAt, job.processedAt) : null;
  const run = job.processedAt && job.finishedAt ? between(job.processedAt, job.finishedAt) : null;
  const pairs = [
    ['Queue', h('a', { href: `#/queues/${encodeURIComponent(job.queue)}` }, job.queue)],
    ['Type', job.type], ['State', stateBadge(job.state)], ['Attempts', attemptText(job)],
    ['Priority', h('span', { title: 'BullMQ priority: lower numbers run first; 0 is none' }, priority(job.priority))],
    ['Worker', job.worker || '–'],
    ['Waited', duration(wait)], ['Ran', duration(run)],
  ];
  return h('dl', { class: 'facts' }, pairs.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v))));
}

/** A failed job's error, and each failed attempt with its stack trace. For a job that is not failed (it was
 * retried and then completed, or waits for its next attempt), the errors are history: BullMQ keeps the last
 * `failedReason` on the job, but it is not the job's current state. */
function attempts(job) {
  if (!job.retryHistory.length && !job.failedReason) return null;
  const failed = job.state === 'FAILED';
  const items = job.retryHistory.map((a) => h('details', { class: 'attempt', open: failed && a === job.retryHistory.at(-1) },
    h('summary', {}, h('strong', {}, `Attempt ${a.attempt}`), ` · ${dateTime(a.failedAt)}${a.worker ? ` · ${a.worker}` : ''} · `,
      h('span', { class: failed ? 'reason' : 'reason past' }, a.error)),
    h('pre', { class: 'code stack', tabindex: '0', 'aria-label': `Stack trace of attempt ${a.attempt}` }, a.stacktrace || 'No stack trace.')));
  if (!failed) {
    const earlier = items.length ? items : h('p', { class: 'help' }, `Last error: ${job.failedReason}`);
    return section('Earlier attempts', h('p', { class: 'help' },
      `These attempts failed before; the job is ${job.state.toLowerCase().replace('_', ' ')} now.`), earlier);
  }
  return section('Errors', job.failedReason && h('p', { class: 'error-text' }, h('strong', {}, 'Failed: '), job.failedReason),
    items.length ? items : note('No attempt history.'));
}

export function render(ctx, { queue, id }) {
  const { client, main, perms } = ctx;
  const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Queues'), ' / ',
    h('a', { href: `#/queues/${encodeURIComponent(queue)}` }, queue), ' / ', `job ${id}`);
  const title = h('h1', {}, `Job ${id}`);
  const badge = h('span', { class: 'badge-slot' });
  const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Job actions' });
  const bar = h('div', { class: 'progress', role: 'progressbar', 'aria-label': 'Progress', 'aria-valuemin': '0', 'aria-valuemax': '100' },
    h('div', { class: 'progress-fill' }));
  const progressText = h('span', { class: 'progress-text' });
  const body = h('div', { class: 'job-body' }, note('Loading…'));
  const logs = h('pre', { class: 'code logs', tabindex: '0', 'aria-label': 'Job logs', 'aria-live': 'off' });
  const flow = flowSection(client, queue, id);
  main.append(crumbs, h('div', { class: 'page-head' }, h('div', {}, title, ' ', badge), actions),
    h('div', { class: 'progress-row' }, bar, progressText), flow.element, body);
  let job = null;
  let sub = null;
  let logLines = [];

  function showProgress() {
    const value = progressValue(job.progress);
    const shown = job.state === 'COMPLETED' ? 100 : value ?? 0;
    // Progress means something while a job runs, or when it reported some; not for a job that never did.
    bar.parentElement.hidden = !(job.state === 'ACTIVE' || job.state === 'COMPLETED' || shown > 0);
    bar.setAttribute('aria-valuenow', String(shown));
    bar.querySelector('.progress-fill').style.width = `${shown}%`;
    bar.dataset.state = job.state.toLowerCase();
    progressText.textContent = value === null && typeof job.progress === 'object' && job.progress !== null
      ? json(job.progress) : `${shown}%`;
  }

  function drawLogs() {
    logs.textContent = logLines.length ? logLines.join('\n') : 'No log lines.';
    logs.scrollTop = logs.scrollHeight;
  }

  function draw() {
    replace(badge, stateBadge(job.state));
    showProgress();
    drawActions();
    replace(body,
      h('div', { class: 'columns' }, section('Summary', facts(job)), section('Timeline', timeline(job))),
      attempts(job),
      job.state === 'COMPLETED' && section('Result', h('pre', { class: 'code', tabindex: '0' }, json(job.result))),
      h('div', { class: 'columns' },
        section('Data', h('pre', { class: 'code', tabindex: '0', 'aria-label': 'Job data' }, json(job.data))),
        section('Options', h('pre', { class: 'code', tabindex: '0', 'aria-label': 'Job options' }, json(job.options)))),
      section('Logs', logs));
    drawLogs();
  }

  function drawActions() {
    const list = [];
    if (perms.can('OPERATOR', queue)) {
      if (FINAL.has(job.state)) list.push(['Retry', 'retryJob(queue: $queue, id: $id) { id }', false]);
      if (job.state === 'DELAYED') list.push(['Promote', 'promoteJob(queue: $queue, id: $id) { id }', false]);
      if (PENDING.has(job.state) || job.state === 'ACTIVE') list.push(['Cancel', 'cancelJob(queue: $queue, id: $id) { removed }', true]);
      if (job.state !== 'ACTIVE') list.push(['Remove', 'removeJob(queue: $queue, id: $id)', true]);
    }
    replace(actions, list.map(([label, field, risky]) => h('button', {
      type: 'button', class: risky ? 'button danger-subtle' : 'button', onclick: () => act(label, field, risky),
    }, label)), perms.can('OPERATOR', queue) && h('button', { type: 'button', class: 'button', onclick: duplicate }, 'Duplicate…'));
  }

  async function duplicate() {
    try {
      const added = await addJobDialog(client, { queues: await writableQueues(client, perms), job });
      if (added) {
        toast(`Added job ${added.id} to ${added.queue}, a copy of job ${id}.`);
        location.hash = `#/queues/${encodeURIComponent(added.queue)}/jobs/${encodeURIComponent(added.id)}`;
      }
    } catch (error) {
      toast(describeError(error), { kind: 'error' });
    }
  }

  async function act(label, field, risky) {
    if (risky && !(await confirmDialog({ title: `${label} job ${id}?`, body: `${label} job ${id} of ${queue}.`, confirmLabel: label, danger: true }))) return;
    try {
      await client.request(`mutation ($queue: String!, $id: ID!) { ${field} }`, { queue, id });
      toast(`${label}: job ${id} done.`);
      load();
    } catch (error) {
      toast(describeError(error), { kind: 'error' });
    }
  }

  function follow() {
    sub?.close();
    if (FINAL.has(job.state)) return;
    sub = client.subscribe(UPDATES, { id, queue }, {
      next: ({ jobUpdates: update }) => {
        if (update.newLogs.length) logLines = logLines.concat(update.newLogs).slice(-1000);
        if (!update.job) {
          replace(body, note(`Job ${id} was removed.`));
          return;
        }
        const changed = update.job.state !== job.state || update.job.attempts !== job.attempts;
        job = update.job;
        if (changed) flow.refresh();
        if (changed || update.event === 'snapshot') draw();
        else {
          showProgress();
          drawLogs();
        }
      },
      error: (error) => toast(describeError(error), { kind: 'error' }),
      complete: () => load(),
    });
  }

  async function load() {
    try {
      const data = await client.request(JOB_QUERY, { id, queue });
      if (!data.job) {
        replace(body, note(`There is no job ${id} in ${queue} (it may have been removed).`, 'error'));
        replace(actions);
        return;
      }
      job = data.job;
      logLines = job.logs;
      draw();
      flow.refresh();
      follow();
    } catch (error) {
      replace(body, note(`Cannot load the job: ${describeError(error)}`, 'error'));
    }
  }

  load();
  ctx.onReconnect(load);
  return () => sub?.close();
}
