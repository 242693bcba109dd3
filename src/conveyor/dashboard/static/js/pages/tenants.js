// Tenants (deployment admins only: an admin token without queue scope or tenant): each tenant's quotas;
// save (create or replace the quotas of) a tenant, remove one after typing its id.

import { h, replace } from '../dom.js';
import { dateTime, duration } from '../format.js';
import { count } from '../format.js';
import { QUEUE_FIELDS, STATES, confirmDialog, describeError, note, onSubmit, pausedBadge, section, toast } from '../ui.js';

const FIELDS = 'id prefix createdAt maxWaitingJobs maxPayloadBytes rateLimit { max durationMs }';
const TENANTS = `query Tenants { tenants { ${FIELDS} } }`;
const SAVE = `mutation SaveTenant($id: String!, $quotas: TenantQuotasInput) { saveTenant(id: $id, quotas: $quotas) { ${FIELDS} } }`;
const REMOVE = 'mutation RemoveTenant($id: String!) { removeTenant(id: $id) }';
const QUEUES = `query TenantQueues($id: String!) { tenant(id: $id) { id queues { ${QUEUE_FIELDS} } } }`;

/** Whether the caller may see the Tenants page (the API refuses anyone else). */
export function allowed(perms) {
  return perms.may('ADMIN') && !perms.me.queues;
}

function limitText(value, unit = '') {
  return value === null || value === undefined ? 'unlimited' : `${value.toLocaleString()}${unit}`;
}

function rateText(limit) {
  return limit ? `${limit.max.toLocaleString()} jobs per ${duration(limit.durationMs)}` : 'unlimited';
}

function field(id, label, control, help = null) {
  if (help) control.setAttribute('aria-describedby', `${id}-help`);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control,
    help && h('span', { class: 'help', id: `${id}-help` }, help));
}

function numberInput(id, min = 1) {
  return h('input', { type: 'number', id, name: id, min, step: 1, inputmode: 'numeric' });
}

/** The save form; `save(id, quotas)` resolves true when saved. Returns the form and `edit(tenant)`. */
function saveForm(save) {
  const id = h('input', { type: 'text', id: 'tenant-id', name: 'id', required: true, autocomplete: 'off',
    spellcheck: 'false', pattern: '[a-z0-9][a-z0-9_\\-]{0,62}' });
  const waiting = numberInput('tenant-max-waiting');
  const payload = numberInput('tenant-max-payload');
  const rateMax = numberInput('tenant-rate-max');
  const rateMs = numberInput('tenant-rate-ms');
  const error = h('p', { class: 'form-error', role: 'alert' });
  const form = h('form', { class: 'tenant-form', 'aria-label': 'Save a tenant' },
    h('div', { class: 'form-grid' },
      field('tenant-id', 'Tenant id', id, 'Lower-case letters, digits, - and _. Saving an existing id replaces its quotas.'),
      field('tenant-max-waiting', 'Max waiting jobs', waiting, 'Empty: unlimited.'),
      field('tenant-max-payload', 'Max payload bytes', payload, 'Empty: unlimited.'),
      field('tenant-rate-max', 'Rate limit: jobs', rateMax, 'With the window below; empty: unlimited.'),
      field('tenant-rate-ms', 'Rate limit: per (ms)', rateMs)),
    error,
    h('button', { type: 'submit', class: 'button primary' }, 'Save tenant'));

  const num = (input) => (input.value.trim() === '' ? null : Number(input.value));
  function read() {
    const [max, ms] = [num(rateMax), num(rateMs)];
    if ((max === null) !== (ms === null)) throw new Error('Give the rate limit both a number of jobs and a window, or neither.');
    return { maxWaitingJobs: num(waiting), maxPayloadBytes: num(payload), rateLimit: max === null ? null : { max, durationMs: ms } };
  }

  onSubmit(form, error, {
    read,
    send: (quotas) => save(id.value.trim(), quotas),
    reset() {
      for (const el of [id, waiting, payload, rateMax, rateMs]) el.value = '';
      id.focus();
    },
  });

  function edit(tenant) {
    id.value = tenant.id;
    waiting.value = tenant.maxWaitingJobs ?? '';
    payload.value = tenant.maxPayloadBytes ?? '';
    rateMax.value = tenant.rateLimit?.max ?? '';
    rateMs.value = tenant.rateLimit?.durationMs ?? '';
    waiting.focus();
  }
  return { form, edit };
}

/** A tenant's queues with their counts, as a table. */
function queueTable(tenant, queues) {
  if (!queues.length) return note(`Tenant ${tenant} has no queues.`);
  return h('div', { class: 'table-wrap' }, h('table', { class: 'table compact tenant-queues-table' },
    h('caption', { class: 'visually-hidden' }, `Queues of tenant ${tenant}`),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Queue'),
      STATES.map((state) => h('th', { scope: 'col', class: 'num' }, state.label)))),
    h('tbody', {}, queues.map((q) => h('tr', { dataset: { queue: q.name } },
      h('th', { scope: 'row' }, q.name, q.isPaused ? [' ', pausedBadge()] : null),
      STATES.map((state) => h('td', { class: 'num', dataset: { field: state.field } }, count(q[state.field]))))))));
}

export function render(ctx) {
  const { client, main, perms } = ctx;
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Tenants')));
  if (!allowed(perms)) {
    main.append(note('Tenants are managed by deployment admins only (an admin token without a queue scope or tenant).', 'error'));
    return null;
  }
  const summary = h('p', { class: 'summary', role: 'status' });
  const box = h('div', { class: 'table-wrap' }, note('Loading tenants…'));
  const { form, edit } = saveForm(save);
  const canWrite = perms.can('ADMIN');
  main.querySelector('.page-head').append(summary);
  main.append(h('section', { class: 'panel', 'aria-label': 'Tenant list' }, box,
    h('div', { class: 'pager' }, h('button', { type: 'button', class: 'button subtle', onclick: () => load() }, 'Refresh list'))),
  canWrite && section('Save a tenant', form));
  let tenants = [];

  function row(t) {
    return h('tr', { dataset: { tenant: t.id } },
      h('th', { scope: 'row' }, t.id), h('td', {}, h('code', {}, t.prefix)),
      h('td', { class: 'nowrap' }, dateTime(t.createdAt)),
      h('td', { class: 'num' }, limitText(t.maxWaitingJobs)), h('td', { class: 'num' }, limitText(t.maxPayloadBytes, ' B')),
      h('td', {}, rateText(t.rateLimit)),
      h('td', { class: 'nowrap' },
        h('button', { type: 'button', class: 'button subtle', 'aria-expanded': 'false', 'aria-label': `Queues of tenant ${t.id}`,
          onclick: (event) => toggleQueues(t.id, event.currentTarget) }, 'Queues'),
        canWrite && [' ',
          h('button', { type: 'button', class: 'button subtle', 'aria-label': `Edit quotas of tenant ${t.id}`, onclick: () => edit(t) }, 'Edit'),
          ' ',
          h('button', { type: 'button', class: 'button danger-subtle', 'aria-label': `Remove tenant ${t.id}`, onclick: () => remove(t.id) }, 'Remove')]));
  }

  function draw() {
    summary.textContent = `${tenants.length} tenant${tenants.length === 1 ? '' : 's'}`;
    if (!tenants.length) {
      replace(box, note('No tenants yet.'));
      return;
    }
    const labels = ['Tenant', 'Key prefix', 'Created', 'Max waiting jobs', 'Max payload', 'Rate limit'];
    replace(box, h('table', { class: 'table tenants-table' },
      h('caption', { class: 'visually-hidden' }, 'Tenants'),
      h('thead', {}, h('tr', {}, labels.map((label) => h('th', { scope: 'col' }, label)),
        h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
      h('tbody', {}, tenants.map(row))));
  }

  /** Show (or hide) the tenant's queues in a row under its own. */
  async function toggleQueues(id, button) {
    const row = button.closest('tr');
    const shown = row.nextElementSibling?.dataset.queuesOf === id ? row.nextElementSibling : null;
    if (shown) {
      shown.remove();
      button.setAttribute('aria-expanded', 'false');
      return;
    }
    const cell = h('td', { colspan: '7' }, note('Loading queues…'));
    row.after(h('tr', { class: 'tenant-queues', dataset: { queuesOf: id } }, cell));
    button.setAttribute('aria-expanded', 'true');
    try {
      const { tenant } = await client.request(QUEUES, { id });
      replace(cell, tenant ? queueTable(id, tenant.queues) : note(`Tenant ${id} is gone.`, 'error'));
    } catch (error) {
      replace(cell, note(`Cannot load the queues of ${id}: ${describeError(error)}`, 'error'));
    }
  }

  async function load() {
    try {
      tenants = (await client.request(TENANTS)).tenants;
      draw();
    } catch (error) {
      replace(box, note(`Cannot load tenants: ${describeError(error)}`, 'error'));
    }
  }

  async function save(id, quotas) {
    if (tenants.some((t) => t.id === id)) {
      const ok = await confirmDialog({ title: `Replace the quotas of ${id}?`,
        body: `Tenant ${id} exists; saving replaces its quotas.`, confirmLabel: 'Replace' });
      if (!ok) return false;
    }
    await client.request(SAVE, { id, quotas });
    toast(`Saved tenant ${id}.`);
    await load();
    return true;
  }

  async function remove(id) {
    const ok = await confirmDialog({ title: `Remove tenant ${id}?`,
      body: `Its tokens stop working and its queues refuse new jobs; its data stays.`,
      confirmLabel: 'Remove tenant', danger: true, typed: id });
    if (!ok) return;
    try {
      const removed = (await client.request(REMOVE, { id })).removeTenant;
      toast(removed ? `Removed tenant ${id}.` : `Tenant ${id} was already gone.`);
    } catch (error) {
      toast(describeError(error), { kind: 'error' });
    }
    load();
  }

  load();
  ctx.onReconnect(load);
  return null;
}
