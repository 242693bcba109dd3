// The job list of a queue page: tabs per state, search, cursor paging, sorting and bulk actions.

import { h, replace } from '../dom.js';
import { attempts, between, count, dateTime, duration, preview } from '../format.js';
import { parseSearch, timeRange } from '../search.js';
import { STATES, describeError, note, stateBadge, toast } from '../ui.js';

const JOBS_QUERY = `query Jobs($queue: String!, $states: [JobState!], $type: String, $search: String, $first: Int!, $after: String) {
  jobs(queue: $queue, states: $states, type: $type, search: $search, first: $first, after: $after) {
    edges { cursor node { id type state attempts maxAttempts priority createdAt processedAt finishedAt delayedUntil failedReason progress data } }
    pageInfo { hasNextPage endCursor }
  }
}`;
const PAGE = 50;
const SERVER_PAGE = 100; // the API's largest page: a refined search examines more per request
const MAX_ROUNDS = 20; // requests per page of a refined search before it stops and offers to go on
const NEWEST_FIRST = new Set(['completed', 'failed']);
const FOLLOW_MS = 1000;

const BULK = {
  retry: { label: 'Retry', field: 'retryJobs', done: 'retried' },
  promote: { label: 'Promote', field: 'promoteJobs', done: 'promoted' },
  cancel: { label: 'Cancel', field: 'cancelJobs', done: 'cancelled' },
  remove: { label: 'Remove', field: 'removeJobs', done: 'removed' },
};
const BULK_BY_TAB = {
  waiting: ['cancel', 'remove'], delayed: ['promote', 'cancel', 'remove'],
  active: ['cancel'], completed: ['retry', 'remove'], failed: ['retry', 'remove'], 'waiting-children': ['cancel', 'remove'],
};
const SORTS = {
  createdAt: (job) => job.createdAt,
  finishedAt: (job) => job.finishedAt || job.processedAt || '',
  duration: (job) => runTime(job) ?? -1,
  attempts: (job) => job.attempts,
};

function runTime(job) {
  if (!job.processedAt) return null;
  return job.finishedAt ? between(job.processedAt, job.finishedAt) : Date.now() - new Date(job.processedAt).getTime();
}

function details(job) {
  // A job keeps its last error after a retry; it is the job's story only while the job is failed.
  if (job.failedReason && job.state === 'FAILED') return h('span', { class: 'reason' }, preview(job.failedReason, 100));
  if (job.state === 'ACTIVE' && typeof job.progress === 'number') {
    return h('progress', { max: 100, value: job.progress, 'aria-label': `Progress of job ${job.id}` }, `${job.progress}%`);
  }
  if (job.state === 'DELAYED' && job.delayedUntil) return `until ${dateTime(job.delayedUntil)}`;
  return h('code', { class: 'data-preview' }, preview(job.data, 70));
}

export function jobList(ctx, queue) {
  const { client, perms, params } = ctx;
  const tabKeys = STATES.map((s) => s.key);
  const chosenTab = tabKeys.includes(params.get('tab')) ? params.get('tab') : null;
  const state = {
    tab: chosenTab || 'waiting',
    q: params.get('q') || '', from: params.get('from') || '', to: params.get('to') || '',
    cursors: [null], page: 0, next: null, rows: [], selected: new Set(), sort: null, loading: 0,
  };
  const canAct = perms.can('OPERATOR', queue);

  // -- tabs ----------------------------------------------------------------------------------------
  const tabs = STATES.map((s) => h('button', {
    type: 'button', role: 'tab', id: `tab-${s.key}`, 'aria-controls': 'job-panel', dataset: { tab: s.key },
  }, h('span', {}, s.label), ' ', h('span', { class: 'tab-count', dataset: { count: s.field } }, '')));
  const tablist = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Job states' }, tabs);
  tablist.addEventListener('click', (event) => {
    const tab = event.target.closest('[role=tab]');
    if (tab) select(tab.dataset.tab);
  });
  tablist.addEventListener('keydown', (event) => {
    const index = tabKeys.indexOf(state.tab);
    const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabKeys.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const target = (moves[event.key] + tabKeys.length) % tabKeys.length;
    select(tabKeys[target]);
    tabs[target].focus();
  });

  // -- search --------------------------------------------------------------------------------------
  const search = h('input', { type: 'search', id: 'job-search', name: 'q', value: state.q, autocomplete: 'off',
    spellcheck: 'false', placeholder: 'id:42  type:index-file  data.filePath:src/*  reason:timeout', 'aria-describedby': 'search-help' });
  const from = h('input', { type: 'datetime-local', id: 'job-from', value: state.from, step: 1 });
  const to = h('input', { type: 'datetime-local', id: 'job-to', value: state.to, step: 1 });
  const fromLabel = h('label', { for: 'job-from' }, 'Created from');
  const form = h('form', { class: 'search', role: 'search', 'aria-label': 'Job search' },
    h('div', { class: 'field grow' }, h('label', { for: 'job-search' }, 'Search jobs'), search),
    h('div', { class: 'field' }, fromLabel, from),
    h('div', { class: 'field' }, h('label', { for: 'job-to' }, 'to'), to),
    h('div', { class: 'field buttons' },
      h('button', { type: 'submit', class: 'button primary' }, 'Search'),
      h('button', { type: 'button', class: 'button subtle', onclick: resetSearch }, 'Reset')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    Object.assign(state, { q: search.value.trim(), from: from.value, to: to.value });
    restart();
  });
  const help = h('details', { class: 'help', id: 'search-help' }, h('summary', {}, 'Search syntax'),
    h('ul', {},
      h('li', {}, h('code', {}, '42'), ' or ', h('code', {}, 'id:import-*'), ': a job id (', h('code', {}, '*'), ' and ', h('code', {}, '?'), ' are wildcards)'),
      h('li', {}, h('code', {}, 'type:index-file'), ': the job type'),
      h('li', {}, h('code', {}, 'data.filePath:src/*'), ': a data field by its dotted path'),
      h('li', {}, h('code', {}, 'reason:timeout'), ': text in the failure reason'),
      h('li', {}, h('code', {}, '"any text"'), ': text anywhere in the id, type, data or failure reason')));

  // -- bulk actions, table, pager ------------------------------------------------------------------
  const selectedLabel = h('span', { class: 'selected-count', 'aria-live': 'polite' }, 'None selected');
  const bulkButtons = h('span', { class: 'bulk-buttons' });
  const bulkBar = h('div', { class: 'bulk', role: 'group', 'aria-label': 'Bulk actions', hidden: !canAct }, selectedLabel, bulkButtons);
  const table = h('div', { class: 'table-wrap' });
  const status = h('p', { class: 'list-status', role: 'status' });
  const prev = h('button', { type: 'button', class: 'button subtle', onclick: () => go(state.page - 1) }, '← Newer page');
  const next = h('button', { type: 'button', class: 'button subtle', onclick: () => go(state.page + 1) }, 'Next page →');
  const refresh = h('button', { type: 'button', class: 'button subtle', onclick: () => load() }, 'Refresh list');
  const panel = h('div', { id: 'job-panel', role: 'tabpanel', tabindex: '-1' }, form, help, bulkBar, table,
    h('div', { class: 'pager' }, prev, status, next, refresh));
  const el = h('section', { class: 'panel jobs', 'aria-label': 'Jobs' }, tablist, panel);

  function resetSearch() {
    search.value = '';
    from.value = '';
    to.value = '';
    Object.assign(state, { q: '', from: '', to: '' });
    restart();
  }

  function select(tab) {
    if (tab === state.tab) return;
    state.tab = tab;
    state.sort = null;
    restart();
  }

  function restart() {
    state.cursors = [null];
    go(0);
  }

  function go(page) {
    if (page < 0 || page >= state.cursors.length) return;
    state.page = page;
    load();
  }

  function paint() {
    const newest = NEWEST_FIRST.has(state.tab);
    prev.textContent = newest ? '← Newer' : '← Previous';
    next.textContent = newest ? 'Older →' : 'Next →';
    fromLabel.textContent = newest ? 'Finished from' : 'Created from';
    for (const tab of tabs) {
      const on = tab.dataset.tab === state.tab;
      tab.setAttribute('aria-selected', String(on));
      tab.tabIndex = on ? 0 : -1;
    }
    panel.setAttribute('aria-labelledby', `tab-${state.tab}`);
    replace(bulkButtons, (BULK_BY_TAB[state.tab] || []).map((action) => h('button', {
      type: 'button', class: action === 'remove' || action === 'cancel' ? 'button danger-subtle' : 'button',
      disabled: state.selected.size === 0, onclick: () => bulk(action),
    }, `${BULK[action].label} selected`)));
    selectedLabel.textContent = state.selected.size ? `${state.selected.size} selected` : 'None selected';
    bulkBar.hidden = !canAct || state.rows.length === 0;
    ctx.setParams({ tab: state.tab, q: state.q, from: state.from, to: state.to });
  }

  async function fetchPage(after) {
    const terms = parseSearch(state.q);
    const range = timeRange(NEWEST_FIRST.has(state.tab) ? 'finishedAt' : 'createdAt', state.from, state.to);
    const refine = terms.refines || range !== null;
    const states = STATES.find((s) => s.key === state.tab).states;
    const rows = [];
    let cursor = after;
    for (let round = 0; round < MAX_ROUNDS; round += 1) {
      const variables = { queue, states, type: terms.server.type, search: terms.server.search,
        first: refine ? SERVER_PAGE : PAGE, after: cursor };
      const { edges, pageInfo } = (await client.request(JOBS_QUERY, variables)).jobs;
      for (const [i, edge] of edges.entries()) {
        const job = edge.node;
        // Finished jobs come newest first: past the range's start, nothing older can match.
        if (range?.low && NEWEST_FIRST.has(state.tab) && job.finishedAt && new Date(job.finishedAt) < range.low) {
          return { rows, next: null };
        }
        if ((!terms.refines || terms.test(job)) && (!range || range.test(job))) rows.push(job);
        if (rows.length === PAGE) {
          const more = i < edges.length - 1 || pageInfo.hasNextPage;
          return { rows, next: more ? edge.cursor : null };
        }
      }
      cursor = pageInfo.endCursor ?? cursor;
      if (!pageInfo.hasNextPage) return { rows, next: null };
    }
    return { rows, next: cursor, partial: true };
  }

  async function load() {
    const ticket = ++state.loading;
    paint();
    table.setAttribute('aria-busy', 'true');
    try {
      const page = await fetchPage(state.cursors[state.page]);
      if (ticket !== state.loading) return;
      state.rows = page.rows;
      state.next = page.next;
      state.cursors.length = state.page + 1;
      if (page.next) state.cursors.push(page.next);
      const visible = new Set(page.rows.map((job) => job.id));
      state.selected = new Set([...state.selected].filter((id) => visible.has(id)));
      drawTable();
      const what = page.rows.length ? `${count(page.rows.length)} job${page.rows.length === 1 ? '' : 's'}, page ${state.page + 1}` : 'No jobs';
      status.textContent = page.partial
        ? `${what} so far. The search paused to stay fast: “${next.textContent.trim()}” searches further.`
        : `${what}${state.q || state.from || state.to ? ' match' : ''}.`;
    } catch (error) {
      if (ticket !== state.loading) return;
      replace(table, note(`Cannot load jobs: ${describeError(error)}`, 'error'));
      status.textContent = '';
    } finally {
      if (ticket === state.loading) {
        table.removeAttribute('aria-busy');
        prev.disabled = state.page === 0;
        next.disabled = !state.next;
        paint();
      }
    }
  }

  function sortedRows() {
    if (!state.sort) return state.rows;
    const { key, dir } = state.sort;
    const value = SORTS[key];
    return [...state.rows].sort((a, b) => {
      const x = value(a);
      const y = value(b);
      return (x < y ? -1 : x > y ? 1 : 0) * dir;
    });
  }

  function sortHeader(key, label) {
    const current = state.sort?.key === key ? state.sort.dir : 0;
    const aria = current === 1 ? 'ascending' : current === -1 ? 'descending' : 'none';
    return h('th', { scope: 'col', 'aria-sort': aria },
      h('button', { type: 'button', class: 'sort', onclick: () => {
        state.sort = { key, dir: current === -1 ? 1 : -1 };
        drawTable();
      } }, label, h('span', { 'aria-hidden': 'true' }, current === 1 ? ' ▲' : current === -1 ? ' ▼' : '')));
  }

  function drawTable() {
    if (state.rows.length === 0) {
      replace(table, note(state.q || state.from || state.to ? 'No job matches this search.' : 'No jobs in this state.'));
      return;
    }
    const rows = sortedRows();
    const all = h('input', { type: 'checkbox', 'aria-label': 'Select every job on this page',
      checked: rows.every((job) => state.selected.has(job.id)),
      indeterminate: state.selected.size > 0 && state.selected.size < rows.length });
    all.addEventListener('change', () => {
      state.selected = all.checked ? new Set(rows.map((job) => job.id)) : new Set();
      drawTable();
      paint();
    });
    const head = h('tr', {}, canAct && h('th', { scope: 'col', class: 'check' }, all),
      h('th', { scope: 'col' }, 'Job'), h('th', { scope: 'col' }, 'Type'), h('th', { scope: 'col' }, 'State'),
      sortHeader('createdAt', 'Created'), sortHeader('finishedAt', 'Started / finished'),
      sortHeader('duration', 'Run time'), sortHeader('attempts', 'Attempts'), h('th', { scope: 'col' }, 'Details'));
    const body = rows.map((job) => {
      const box = canAct ? h('input', { type: 'checkbox', checked: state.selected.has(job.id), 'aria-label': `Select job ${job.id}` }) : null;
      box?.addEventListener('change', () => {
        if (box.checked) state.selected.add(job.id);
        else state.selected.delete(job.id);
        paint();
        all.checked = rows.every((j) => state.selected.has(j.id));
        all.indeterminate = state.selected.size > 0 && !all.checked;
      });
      return h('tr', { dataset: { job: job.id } }, canAct && h('td', { class: 'check' }, box),
        h('td', {}, h('a', { href: `#/queues/${encodeURIComponent(queue)}/jobs/${encodeURIComponent(job.id)}` }, job.id)),
        h('td', {}, job.type), h('td', {}, stateBadge(job.state)),
        h('td', { class: 'nowrap' }, dateTime(job.createdAt)),
        h('td', { class: 'nowrap' }, dateTime(job.finishedAt || job.processedAt)),
        h('td', { class: 'num' }, duration(runTime(job))),
        h('td', { class: 'num nowrap' }, attempts(job)),
        h('td', { class: 'details' }, details(job)));
    });
    replace(table, h('table', { class: 'table jobs-table' },
      h('caption', { class: 'visually-hidden' }, `${STATES.find((s) => s.key === state.tab).label} jobs of ${queue}`),
      h('thead', {}, head), h('tbody', {}, body)));
  }

  // The list follows the counts: when jobs moved between states, the page is fetched again, at most every
  // FOLLOW_MS (a busy queue changes many times a second), so the badges and the list agree within moments.
  let lastSignature = null;
  let followTimer = null;
  let lastFollow = 0;

  function followLater() {
    if (followTimer !== null) return;
    const wait = Math.max(0, lastFollow + FOLLOW_MS - Date.now());
    followTimer = setTimeout(() => {
      followTimer = null;
      lastFollow = Date.now();
      load();
    }, wait);
  }

  async function bulk(action) {
    const ids = [...state.selected];
    const { field, done, label } = BULK[action];
    try {
      const result = (await client.request(
        `mutation ($queue: String!, $ids: [ID!]!) { ${field}(queue: $queue, ids: $ids) { succeeded failed { id code message } } }`,
        { queue, ids }))[field];
      const failed = result.failed.length ? `; ${result.failed.length} refused (${result.failed[0].message})` : '';
      toast(`${label}: ${result.succeeded.length} ${done}${failed}.`, { kind: result.failed.length ? 'error' : 'info' });
      state.selected.clear();
      load();
    } catch (error) {
      toast(describeError(error), { kind: 'error' });
    }
  }

  return {
    el,
    reload: load,
    /** The first load: without a tab in the URL, open the first state that holds jobs. */
    start(q) {
      if (!chosenTab && q) {
        const order = ['active', 'waiting', 'delayed', 'failed', 'completed', 'waiting-children'];
        state.tab = order.find((key) => q[STATES.find((s) => s.key === key).field] > 0) || 'waiting';
      }
      load();
    },
    /** Live counts from the queue's stats: the tab badges, and a re-fetch of the list when they moved. */
    counts(q) {
      for (const s of STATES) {
        el.querySelector(`[data-count="${s.field}"]`).textContent = count(q[s.field]);
      }
      const signature = STATES.map((s) => q[s.field]).join(',');
      if (lastSignature !== null && signature !== lastSignature) followLater();
      lastSignature = signature;
    },
    stop() {
      clearTimeout(followTimer);
    },
  };
}
