// Schedules: every cron or interval schedule the caller may see; add (or replace) one by key, remove one.

import { h, replace } from '../dom.js';
import { dateTime, duration, preview } from '../format.js';
import { confirmDialog, describeError, note, onSubmit, section, toast } from '../ui.js';
import { QUEUE_NAMES } from './deadletters.js';

const SCHEDULE_FIELDS = 'key queue type data cron everyMs tz nextRun updatedAt';
const SCHEDULES = `query Schedules { schedules { ${SCHEDULE_FIELDS} } }`;
const SAVE = `mutation SaveSchedule($schedule: ScheduleInput!) { saveSchedule(schedule: $schedule) { ${SCHEDULE_FIELDS} } }`;
const REMOVE = 'mutation RemoveSchedule($key: String!) { removeSchedule(key: $key) }';

function when(schedule) {
  if (schedule.cron) return h('span', {}, h('code', {}, schedule.cron), schedule.tz !== 'UTC' ? ` (${schedule.tz})` : ' (UTC)');
  return `every ${duration(schedule.everyMs)}`;
}

/** The queue page searching for the jobs a schedule added (BullMQ run ids: `repeat:<key>:<tick ms>`). */
function jobsHref(schedule) {
  const query = new URLSearchParams({ tab: 'completed', q: `id:repeat:${schedule.key}:*` });
  return `#/queues/${encodeURIComponent(schedule.queue)}?${query}`;
}

function field(id, label, control, help = null) {
  if (help) control.setAttribute('aria-describedby', `${id}-help`);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control,
    help && h('span', { class: 'help', id: `${id}-help` }, help));
}

/** The add form; `save(input)` resolves true when the schedule was saved. */
function addForm(queues, save) {
  const input = (id, attrs = {}) => h('input', { type: 'text', id, name: id, autocomplete: 'off', spellcheck: 'false', ...attrs });
  const key = input('schedule-key', { required: true, pattern: '[A-Za-z0-9][A-Za-z0-9_.\\-]{0,127}' });
  const queue = h('select', { id: 'schedule-queue', name: 'queue', required: true },
    queues.map((name) => h('option', { value: name }, name)));
  const type = input('schedule-type', { required: true });
  const cron = input('schedule-cron', { placeholder: '*/5 * * * *' });
  const every = h('input', { type: 'number', id: 'schedule-every', name: 'every', min: 10, step: 1, placeholder: '60000' });
  const tz = input('schedule-tz', { value: 'UTC' });
  const data = h('textarea', { id: 'schedule-data', name: 'data', rows: 3, spellcheck: 'false', class: 'code-input' }, '{}');
  const error = h('p', { class: 'form-error', role: 'alert' });
  const form = h('form', { class: 'schedule-form', 'aria-label': 'Add a schedule' },
    h('div', { class: 'form-grid' },
      field('schedule-key', 'Key', key, 'Saving an existing key replaces that schedule.'),
      field('schedule-queue', 'Queue', queue), field('schedule-type', 'Job type', type),
      field('schedule-cron', 'Cron expression', cron, '5 fields, or 6 with seconds first.'),
      field('schedule-every', 'Or interval (ms)', every, 'Fill in the cron expression or the interval, not both.'),
      field('schedule-tz', 'Time zone (cron)', tz)),
    field('schedule-data', 'Job data (JSON)', data),
    error,
    h('button', { type: 'submit', class: 'button primary' }, 'Add schedule'));

  function read() {
    const text = { cron: cron.value.trim(), every: every.value.trim() };
    if (!text.cron === !text.every) throw new Error('Give either a cron expression or an interval in milliseconds.');
    let parsed;
    try {
      parsed = JSON.parse(data.value.trim() || 'null');
    } catch (err) {
      throw new Error(`The job data is not valid JSON: ${err.message}`);
    }
    return { key: key.value.trim(), queue: queue.value, type: type.value.trim(), data: parsed,
      cron: text.cron || null, everyMs: text.every ? Number(text.every) : null, tz: tz.value.trim() || 'UTC' };
  }

  onSubmit(form, error, {
    read,
    send: save,
    reset() {
      for (const el of [key, type, cron, every]) el.value = '';
      key.focus();
    },
  });
  return form;
}

export function render(ctx) {
  const { client, main, perms } = ctx;
  const summary = h('p', { class: 'summary', role: 'status' });
  const box = h('div', { class: 'table-wrap' }, note('Loading schedules…'));
  const formSlot = h('div');
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Schedules'), summary),
    h('section', { class: 'panel', 'aria-label': 'Schedule list' }, box,
      h('div', { class: 'pager' }, h('button', { type: 'button', class: 'button subtle', onclick: () => load() }, 'Refresh list'))),
    formSlot);
  let schedules = [];

  function draw() {
    summary.textContent = `${schedules.length} schedule${schedules.length === 1 ? '' : 's'}`;
    if (!schedules.length) {
      replace(box, note('No schedules yet.'));
      return;
    }
    const canRemove = schedules.some((s) => perms.can('OPERATOR', s.queue));
    const rows = schedules.map((s) => h('tr', { dataset: { schedule: s.key } },
      h('th', { scope: 'row' }, s.key),
      h('td', {}, h('a', { href: `#/queues/${encodeURIComponent(s.queue)}` }, s.queue)),
      h('td', {}, s.type), h('td', {}, when(s)),
      h('td', { class: 'nowrap' }, dateTime(s.nextRun)),
      h('td', { class: 'details' }, h('code', { class: 'data-preview' }, preview(s.data, 60))),
      h('td', {}, h('a', { href: jobsHref(s), 'aria-label': `Jobs of schedule ${s.key}` }, 'Jobs')),
      canRemove && h('td', {}, perms.can('OPERATOR', s.queue) && h('button', {
        type: 'button', class: 'button danger-subtle', 'aria-label': `Remove schedule ${s.key}`, onclick: () => remove(s.key),
      }, 'Remove'))));
    const labels = ['Key', 'Queue', 'Type', 'Cron or interval', 'Next run', 'Data', 'Added jobs'];
    replace(box, h('table', { class: 'table schedules-table' },
      h('caption', { class: 'visually-hidden' }, 'Schedules'),
      h('thead', {}, h('tr', {}, labels.map((label) => h('th', { scope: 'col' }, label)),
        canRemove && h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
      h('tbody', {}, rows)));
  }

  async function load() {
    try {
      schedules = (await client.request(SCHEDULES)).schedules;
      draw();
    } catch (error) {
      replace(box, note(`Cannot load schedules: ${describeError(error)}`, 'error'));
    }
  }

  async function remove(key) {
    const ok = await confirmDialog({ title: `Remove schedule ${key}?`,
      body: `No more jobs are added for ${key}; jobs it already added stay.`, confirmLabel: 'Remove', danger: true });
    if (!ok) return;
    try {
      const removed = (await client.request(REMOVE, { key })).removeSchedule;
      toast(removed ? `Removed schedule ${key}.` : `Schedule ${key} was already gone.`);
    } catch (error) {
      toast(describeError(error), { kind: 'error' });
    }
    load();
  }

  async function save(schedule) {
    if (schedules.some((s) => s.key === schedule.key)) {
      const ok = await confirmDialog({ title: `Replace schedule ${schedule.key}?`,
        body: `A schedule ${schedule.key} exists; saving replaces it.`, confirmLabel: 'Replace' });
      if (!ok) return false;
    }
    await client.request(SAVE, { schedule });
    toast(`Saved schedule ${schedule.key}.`);
    await load();
    return true;
  }

  client.request(QUEUE_NAMES).then(({ queues }) => {
    const allowed = queues.map((q) => q.name).filter((name) => perms.can('OPERATOR', name));
    if (allowed.length) replace(formSlot, section('Add a schedule', addForm(allowed, save)));
  }).catch((error) => toast(describeError(error), { kind: 'error' }));
  load();
  ctx.onReconnect(load);
  return null;
}
