// Shared pieces of the interface: toasts, the connection banner, confirmation dialogs, badges, states.

import { h } from './dom.js';

export const STATES = [
  { key: 'waiting', label: 'Waiting', field: 'waiting', states: ['WAITING'] },
  { key: 'delayed', label: 'Delayed', field: 'delayed', states: ['DELAYED'] },
  { key: 'active', label: 'Active', field: 'active', states: ['ACTIVE'] },
  { key: 'completed', label: 'Completed', field: 'completed', states: ['COMPLETED'] },
  { key: 'failed', label: 'Failed', field: 'failed', states: ['FAILED'] },
  { key: 'waiting-children', label: 'Waiting for children', field: 'waitingChildren', states: ['WAITING_CHILDREN'] },
];

export const QUEUE_FIELDS = 'name waiting active completed failed delayed prioritized waitingChildren isPaused concurrency';

/** A short-lived message; errors and warnings stay until dismissed. */
export function toast(message, { kind = 'info' } = {}) {
  const box = document.getElementById('toasts');
  const close = h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss' }, '×');
  const item = h('div', { class: `toast toast-${kind}` }, h('span', {}, message), close);
  close.addEventListener('click', () => item.remove());
  box.append(item);
  if (kind !== 'error' && kind !== 'warning') setTimeout(() => item.remove(), 6000);
}

/** An error as a sentence for people. */
export function describeError(error) {
  if (!error) return 'Something went wrong.';
  if (error.code === 'REDIS_UNAVAILABLE') return 'Redis is unavailable; the server keeps retrying.';
  return error.message || String(error);
}

/** Handle a form's submit: clear `error`, `read()` the fields (an Error thrown there is shown and nothing is
 * sent), then `send(value)`; when that resolves true, `reset()` the form. A failed send is shown in `error`. */
export function onSubmit(form, error, { read, send, reset }) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    let value;
    try {
      value = read();
    } catch (err) {
      error.textContent = err.message;
      return;
    }
    try {
      if (await send(value)) reset();
    } catch (err) {
      error.textContent = describeError(err);
    }
  });
}

let bannerTimer = null;

/** The banner under the top bar: connection trouble and recovery. */
export function banner(message, kind = 'warning', { hideAfterMs = 0 } = {}) {
  const el = document.getElementById('banner');
  clearTimeout(bannerTimer);
  if (!message) {
    el.hidden = true;
    return;
  }
  el.className = `banner banner-${kind}`;
  el.textContent = message;
  el.hidden = false;
  if (hideAfterMs) bannerTimer = setTimeout(() => { el.hidden = true; }, hideAfterMs);
}

export function stateBadge(state) {
  const key = String(state || 'unknown').toLowerCase().replace('_', '-');
  return h('span', { class: `badge state state-${key}` }, key.replace('-', ' '));
}

export function pausedBadge() {
  return h('span', { class: 'badge paused', title: 'Workers start no jobs of this queue' }, 'Paused');
}

/**
 * Ask for confirmation in a modal dialog. With `typed`, the confirm button stays disabled until the user
 * types that exact text. `extra` are more form controls (e.g. a checkbox). Resolves true or false.
 */
export function confirmDialog({ title, body, confirmLabel = 'Confirm', danger = false, typed = null, extra = null }) {
  return new Promise((resolve) => {
    const confirm = h('button', { type: 'submit', class: ['button', danger ? 'danger' : 'primary'], value: 'yes' }, confirmLabel);
    const cancel = h('button', { type: 'button', class: 'button subtle' }, 'Cancel');
    let input = null;
    if (typed !== null) {
      input = h('input', { type: 'text', id: 'confirm-typed', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'confirm-hint' });
      confirm.disabled = true;
      input.addEventListener('input', () => { confirm.disabled = input.value !== typed; });
    }
    const form = h('form', { method: 'dialog', class: 'dialog-body' },
      h('h2', { id: 'dialog-title' }, title),
      typeof body === 'string' ? h('p', {}, body) : body,
      input && h('label', { for: 'confirm-typed', id: 'confirm-hint' }, 'Type ', h('code', {}, typed), ' to confirm'),
      input,
      extra,
      h('div', { class: 'dialog-actions' }, cancel, confirm));
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': 'dialog-title' }, form);
    let answer = false;
    form.addEventListener('submit', (event) => {
      if (confirm.disabled) {
        event.preventDefault();
        return;
      }
      answer = true;
    });
    cancel.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    (input || cancel).focus();
  });
}

/** A section with a heading. */
export function section(title, ...children) {
  const id = `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

/** A loading or empty placeholder. */
export function note(text, kind = 'muted') {
  return h('p', { class: `note note-${kind}` }, text);
}
