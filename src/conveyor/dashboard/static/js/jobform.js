// Adding a job from the dashboard, or duplicating one: queue, type, JSON data and the options people set most
// (delay, priority, attempts, timeout). Problems are shown in the dialog, which stays open to fix them.

import { h } from './dom.js';
import { describeError, toast } from './ui.js';

const ADD_JOB = `mutation AddJob($queue: String!, $type: String!, $data: JSON, $options: JobOptionsInput) {
  addJob(queueName: $queue, type: $type, data: $data, options: $options) { id queue state }
}`;

/** The queues the caller may add jobs to (none on a read-only dashboard). */
export async function writableQueues(client, perms) {
  const { queues } = await client.request('query QueueNames { queues { name } }');
  return queues.map((q) => q.name).filter((name) => perms.can('OPERATOR', name));
}

function field(id, label, control, help = null) {
  if (help) control.setAttribute('aria-describedby', `${id}-help`);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control,
    help && h('span', { class: 'help', id: `${id}-help` }, help));
}

function numberInput(id, value, min) {
  return h('input', { type: 'number', id, name: id, min, step: 1, inputmode: 'numeric', value: value ?? '' });
}

/** The options of `job.options` (BullMQ's stored `opts`) worth carrying into a duplicate. */
function carried(options = {}) {
  return { delay: options.delay || null, priority: options.priority || null, attempts: options.attempts || null,
    timeout: options.timeout || null, backoff: options.backoff || null };
}

function readOptions(inputs, backoff) {
  const options = {};
  for (const [name, input] of Object.entries(inputs)) {
    const text = input.value.trim();
    if (text === '') continue;
    const value = Number(text);
    if (!Number.isInteger(value)) throw new Error(`${input.dataset.label} must be a whole number.`);
    options[name === 'priority' ? 'priorityLevel' : name] = value;
  }
  if (backoff) options.backoff = { type: String(backoff.type || 'exponential').toUpperCase(), delay: backoff.delay ?? 1000 };
  return options;
}

/**
 * Open the add-job dialog. `queues`: the queues the caller may add to; `job`: a job to duplicate (its queue,
 * type, data and options fill the form; never its id). Resolves to the added job, or null when cancelled.
 */
export function addJobDialog(client, { queues, queue = null, job = null }) {
  return new Promise((resolve) => {
    const queueSelect = h('select', { id: 'add-queue', name: 'queue', required: true },
      queues.map((name) => h('option', { value: name, selected: name === (job?.queue || queue) }, name)));
    const type = h('input', { type: 'text', id: 'add-type', name: 'type', required: true, autocomplete: 'off',
      spellcheck: 'false', value: job?.type || '' });
    const data = h('textarea', { id: 'add-data', name: 'data', rows: 6, spellcheck: 'false', class: 'code-input' },
      JSON.stringify(job ? job.data : {}, null, 2));
    const old = carried(job?.options);
    const inputs = {
      delay: numberInput('add-delay', old.delay, 0),
      priority: numberInput('add-priority', old.priority, 1),
      attempts: numberInput('add-attempts', old.attempts, 1),
      timeout: numberInput('add-timeout', old.timeout, 1),
    };
    inputs.delay.dataset.label = 'Delay';
    inputs.priority.dataset.label = 'Priority';
    inputs.attempts.dataset.label = 'Attempts';
    inputs.timeout.dataset.label = 'Timeout';
    const error = h('p', { class: 'form-error', role: 'alert', id: 'add-error' });
    const submit = h('button', { type: 'submit', class: 'button primary' }, job ? 'Add the copy' : 'Add job');
    const cancel = h('button', { type: 'button', class: 'button subtle' }, 'Cancel');
    const title = job ? `Duplicate job ${job.id}` : 'Add a job';
    const form = h('form', { class: 'dialog-body add-job', 'aria-labelledby': 'dialog-title', novalidate: true },
      h('h2', { id: 'dialog-title' }, title),
      h('div', { class: 'form-grid' },
        field('add-queue', 'Queue', queueSelect), field('add-type', 'Job type', type, 'The handler name, e.g. index-file.')),
      field('add-data', 'Data (JSON)', data),
      h('div', { class: 'form-grid' },
        field('add-delay', 'Delay (ms)', inputs.delay, 'Empty: run as soon as a worker is free.'),
        field('add-priority', 'Priority', inputs.priority, '1 runs first (critical), 3 is normal, 4 low; empty: normal.'),
        field('add-attempts', 'Attempts', inputs.attempts, "Empty: the queue's default."),
        field('add-timeout', 'Timeout (ms)', inputs.timeout, "Empty: the queue's default.")),
      error,
      h('div', { class: 'dialog-actions' }, cancel, submit));
    const dialog = h('dialog', { class: 'dialog wide', 'aria-labelledby': 'dialog-title' }, form);
    let added = null;

    function read() {
      if (!type.value.trim()) throw new Error('Give the job type (the name of its handler).');
      let parsed;
      try {
        parsed = JSON.parse(data.value.trim() || 'null');
      } catch (err) {
        throw new Error(`The data is not valid JSON: ${err.message}`);
      }
      return { queue: queueSelect.value, type: type.value.trim(), data: parsed, options: readOptions(inputs, old.backoff) };
    }

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.textContent = '';
      let variables;
      try {
        variables = read();
      } catch (err) {
        error.textContent = err.message;
        return;
      }
      submit.disabled = true;
      try {
        const { data: result, warnings } = await client.requestWithWarnings(ADD_JOB, variables);
        added = result.addJob;
        for (const warning of warnings) toast(warning, { kind: 'warning' });
        dialog.close();
      } catch (err) {
        error.textContent = describeError(err);
      } finally {
        submit.disabled = false;
      }
    });
    cancel.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(added);
    });
    document.body.append(dialog);
    dialog.showModal();
    (job ? submit : type).focus();
  });
}
