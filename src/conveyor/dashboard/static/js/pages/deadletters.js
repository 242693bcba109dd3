// Dead letters of a queue: a filtered, paged list; replay one, replay all matching, purge all matching.

import { h, replace } from '../dom.js';
import { count, dateTime, preview } from '../format.js';
import { confirmDialog, describeError, note, toast } from '../ui.js';

export const QUEUE_NAMES = 'query QueueNames { queues { name } }';
const LETTERS = `query DeadLetters($queue: String!, $filter: DeadLetterFilterInput, $first: Int!, $offset: Int!) {
  deadLetters(queue: $queue, filter: $filter, first: $first, offset: $offset) {
    total hasMore nodes { jobId type failedReason failedAt attemptsMade }
  }
}`;
const REPLAY = `mutation Replay($queue: String!, $ids: [ID!], $filter: DeadLetterFilterInput, $dryRun: Boolean!) {
  replayDeadLetters(queue: $queue, ids: $ids, filter: $filter, dryRun: $dryRun, limit: 10000) {
    matched replayed truncated newJobIds failures { id message }
  }
}`;
const PURGE = `mutation Purge($queue: String!, $ids: [ID!], $filter: DeadLetterFilterInput, $dryRun: Boolean!) {
  purgeDeadLetters(queue: $queue, ids: $ids, filter: $filter, dryRun: $dryRun) { matched purged truncated }
}`;
const PAGE = 25;

/** The path of a queue's dead letters (or of one of them). */
export function lettersHref(queue, id = null) {
  const base = `#/dead-letters/${encodeURIComponent(queue)}`;
  return id === null ? base : `${base}/${encodeURIComponent(id)}`;
}

function plural(n, word) {
  return `${count(n)} ${word}${n === 1 ? '' : 's'}`;
}

/** Replay dead letters (by ids or filter) and say what happened; resolves to the result, or null on error. */
export async function replayLetters(client, queue, selection) {
  try {
    const result = (await client.request(REPLAY, { queue, ...selection, dryRun: false })).replayDeadLetters;
    const refused = result.failures.length ? `; ${result.failures.length} refused (${result.failures[0].message})` : '';
    toast(`Replayed ${plural(result.replayed, 'dead letter')} of ${queue}${refused}.`, { kind: refused ? 'error' : 'info' });
    return result;
  } catch (error) {
    toast(describeError(error), { kind: 'error' });
    return null;
  }
}

/** Purge dead letters (by ids or filter) and say so; resolves to true when it ran. */
export async function purgeLetters(client, queue, selection) {
  try {
    const result = (await client.request(PURGE, { queue, ...selection, dryRun: false })).purgeDeadLetters;
    toast(`Purged ${plural(result.purged, 'dead letter')} of ${queue}.`);
    return true;
  } catch (error) {
    toast(describeError(error), { kind: 'error' });
    return false;
  }
}

/** The first queue that holds dead letters (else the first queue): where the nav entry leads. */
async function firstWithLetters(client, names) {
  const totals = await Promise.all(names.map((queue) => client.request(LETTERS, { queue, filter: null, first: 1, offset: 0 })
    .then((data) => data.deadLetters.total, () => 0)));
  const found = totals.findIndex((total) => total > 0);
  return names[Math.max(found, 0)];
}

function queuePicker(ctx, queue) {
  const select = h('select', { id: 'dlq-queue', name: 'queue' });
  ctx.client.request(QUEUE_NAMES).then(({ queues }) => {
    const names = queues.map((q) => q.name);
    if (queue && !names.includes(queue)) names.unshift(queue);
    replace(select, names.map((name) => h('option', { value: name, selected: name === queue }, name)));
    if (!queue && names.length) return firstWithLetters(ctx.client, names).then((name) => location.replace(lettersHref(name)));
    return null;
  }).catch((error) => toast(describeError(error), { kind: 'error' }));
  select.addEventListener('change', () => { location.hash = lettersHref(select.value); });
  return h('div', { class: 'field' }, h('label', { for: 'dlq-queue' }, 'Queue'), select);
}

export function render(ctx, { queue }) {
  const { client, main, perms, params } = ctx;
  const canAct = queue && perms.can('OPERATOR', queue);
  const summary = h('p', { class: 'summary', role: 'status' });
  const replayAll = h('button', { type: 'button', class: 'button', disabled: true }, 'Replay all matching…');
  const purgeAll = h('button', { type: 'button', class: 'button danger', disabled: true }, 'Purge matching…');
  const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Dead letter actions' }, canAct && [replayAll, purgeAll]);
  const crumbs = queue && h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Queues'), ' / ',
    h('a', { href: `#/queues/${encodeURIComponent(queue)}` }, queue), ' / dead letters');
  main.append(crumbs || '', h('div', { class: 'page-head' }, h('div', { class: 'title-block' }, h('h1', {}, 'Dead letters'), summary), actions));
  const state = { search: params.get('q') || '', type: params.get('type') || '', offset: 0, total: 0, rows: [], more: false, ticket: 0 };
  const search = h('input', { type: 'search', id: 'dlq-search', value: state.search, autocomplete: 'off', spellcheck: 'false',
    'aria-describedby': 'dlq-search-help' });
  const type = h('input', { type: 'text', id: 'dlq-type', value: state.type, autocomplete: 'off', spellcheck: 'false' });
  const form = h('form', { class: 'search', role: 'search', 'aria-label': 'Dead letter search' },
    queuePicker(ctx, queue),
    h('div', { class: 'field grow' }, h('label', { for: 'dlq-search' }, 'Search dead letters'), search),
    h('div', { class: 'field' }, h('label', { for: 'dlq-type' }, 'Job type'), type),
    h('div', { class: 'field buttons' }, h('button', { type: 'submit', class: 'button primary' }, 'Search')));
  const help = h('p', { class: 'help', id: 'dlq-search-help' }, 'Text in the job id, type, payload or failure reason (any case).');
  const table = h('div', { class: 'table-wrap' });
  const status = h('p', { class: 'list-status' });
  const prev = h('button', { type: 'button', class: 'button subtle', onclick: () => go(state.offset - PAGE) }, '← Newer');
  const next = h('button', { type: 'button', class: 'button subtle', onclick: () => go(state.offset + PAGE) }, 'Older →');
  main.append(h('section', { class: 'panel', 'aria-label': 'Dead letters' }, form, help, table,
    h('div', { class: 'pager' }, prev, status, next, h('button', { type: 'button', class: 'button subtle', onclick: () => load() }, 'Refresh list'))));
  if (!queue) {
    replace(table, note('Choose a queue.'));
    return null;
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    Object.assign(state, { search: search.value.trim(), type: type.value.trim() });
    ctx.setParams({ q: state.search, type: state.type });
    go(0);
  });

  function filter() {
    if (!state.search && !state.type) return null;
    return { search: state.search || null, type: state.type || null };
  }

  function go(offset) {
    state.offset = Math.max(0, offset);
    load();
  }

  async function load() {
    const ticket = ++state.ticket;
    table.setAttribute('aria-busy', 'true');
    try {
      const page = (await client.request(LETTERS, { queue, filter: filter(), first: PAGE, offset: state.offset })).deadLetters;
      if (ticket !== state.ticket) return;
      Object.assign(state, { rows: page.nodes, total: page.total, more: page.hasMore });
      draw();
    } catch (error) {
      if (ticket === state.ticket) replace(table, note(`Cannot load dead letters: ${describeError(error)}`, 'error'));
    } finally {
      if (ticket === state.ticket) table.removeAttribute('aria-busy');
    }
  }

  function draw() {
    const filtered = filter() !== null;
    summary.textContent = `${plural(state.total, 'dead letter')} in ${queue}`;
    prev.disabled = state.offset === 0;
    next.disabled = !state.more;
    replayAll.disabled = purgeAll.disabled = state.rows.length === 0;
    const first = state.offset + 1;
    status.textContent = state.rows.length
      ? `${count(first)}–${count(state.offset + state.rows.length)}${filtered ? ' matching' : ''} of ${plural(state.total, 'dead letter')}.`
      : '';
    if (!state.rows.length) {
      replace(table, note(filtered ? 'No dead letter matches this search.' : `No dead letters in ${queue}: no job has failed for good.`));
      return;
    }
    const head = h('tr', {}, ['Job', 'Type', 'Failed reason', 'Failed at', 'Attempts'].map((label, i) =>
      h('th', { scope: 'col', class: i === 4 ? 'num' : null }, label)), canAct && h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')));
    const rows = state.rows.map((letter) => h('tr', { dataset: { job: letter.jobId } },
      h('td', {}, h('a', { href: lettersHref(queue, letter.jobId) }, letter.jobId)),
      h('td', {}, letter.type),
      h('td', { class: 'details' }, h('span', { class: 'reason', title: letter.failedReason }, preview(letter.failedReason, 100))),
      h('td', { class: 'nowrap' }, dateTime(letter.failedAt)),
      h('td', { class: 'num' }, String(letter.attemptsMade)),
      canAct && h('td', {}, h('button', { type: 'button', class: 'button', 'aria-label': `Replay job ${letter.jobId}`,
        onclick: () => replayOne(letter.jobId) }, 'Replay'))));
    replace(table, h('table', { class: 'table dlq-table' },
      h('caption', { class: 'visually-hidden' }, `Dead letters of ${queue}, newest first`),
      h('thead', {}, head), h('tbody', {}, rows)));
  }

  async function replayOne(id) {
    if (await replayLetters(client, queue, { ids: [id] })) load();
  }

  async function dryRun(mutation, field) {
    const data = await client.request(mutation, { queue, filter: filter() || {}, dryRun: true });
    return data[field];
  }

  replayAll.addEventListener('click', async () => {
    try {
      const found = await dryRun(REPLAY, 'replayDeadLetters');
      if (found.matched === 0) return toast('No dead letters match.');
      const more = found.truncated ? ' (the first 10,000; run it again for the rest)' : '';
      const ok = await confirmDialog({
        title: 'Replay the matching dead letters?',
        body: `${plural(found.matched, 'dead letter')} of ${queue} will be enqueued as new jobs and leave the dead-letter queue${more}.`,
        confirmLabel: `Replay ${plural(found.matched, 'job')}`,
      });
      if (ok && await replayLetters(client, queue, { filter: filter() || {} })) go(0);
    } catch (error) {
      toast(describeError(error), { kind: 'error' });
    }
    return null;
  });

  purgeAll.addEventListener('click', async () => {
    try {
      const found = await dryRun(PURGE, 'purgeDeadLetters');
      if (found.matched === 0) return toast('No dead letters match.');
      const ok = await confirmDialog({
        title: 'Purge the matching dead letters?',
        body: `${plural(found.matched, 'dead letter')} of ${queue} will be deleted for good. This cannot be undone.`,
        confirmLabel: `Purge ${plural(found.matched, 'dead letter')}`, danger: true, typed: queue,
      });
      if (ok && await purgeLetters(client, queue, { filter: filter() || {} })) go(0);
    } catch (error) {
      toast(describeError(error), { kind: 'error' });
    }
    return null;
  });

  load();
  ctx.onReconnect(load);
  return null;
}
