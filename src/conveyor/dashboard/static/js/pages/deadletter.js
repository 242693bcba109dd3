// One dead letter: its payload and options, each failed attempt with its stack trace; replay or purge it.

import { h, replace } from '../dom.js';
import { dateTime, json } from '../format.js';
import { confirmDialog, describeError, note, section } from '../ui.js';
import { lettersHref, purgeLetters, replayLetters } from './deadletters.js';

const LETTER = `query DeadLetter($queue: String!, $id: ID!) {
  deadLetter(queue: $queue, id: $id) {
    jobId queue type data options failedReason attemptsMade stacktrace createdAt failedAt deadLetteredAt worker parent
    history { attempt error stacktrace failedAt worker }
  }
}`;

function facts(letter) {
  const pairs = [
    ['Queue', h('a', { href: `#/queues/${encodeURIComponent(letter.queue)}` }, letter.queue)], ['Type', letter.type],
    ['Attempts made', String(letter.attemptsMade)], ['Worker', letter.worker || '–'],
    ['Created', dateTime(letter.createdAt)], ['Failed', dateTime(letter.failedAt)],
    ['Dead-lettered', dateTime(letter.deadLetteredAt)], ['Parent', letter.parent || '–'],
  ];
  return h('dl', { class: 'facts' }, pairs.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v))));
}

function errors(letter) {
  const last = letter.history.at(-1);
  const items = letter.history.map((a) => h('details', { class: 'attempt', open: a === last },
    h('summary', {}, h('strong', {}, `Attempt ${a.attempt}`), ` · ${dateTime(a.failedAt)}${a.worker ? ` · ${a.worker}` : ''} · `,
      h('span', { class: 'reason' }, a.error)),
    h('pre', { class: 'code stack', tabindex: '0', 'aria-label': `Stack trace of attempt ${a.attempt}` }, a.stacktrace || 'No stack trace.')));
  // Without a recorded history, the job's own stack traces are all there is.
  const traces = !items.length && letter.stacktrace.length
    ? letter.stacktrace.map((trace, i) => h('pre', { class: 'code stack', tabindex: '0', 'aria-label': `Stack trace ${i + 1}` }, trace))
    : null;
  return section('Errors', h('p', { class: 'error-text' }, h('strong', {}, 'Failed: '), letter.failedReason),
    items.length ? items : traces || note('No attempt history.'));
}

export function render(ctx, { queue, id }) {
  const { client, main, perms } = ctx;
  const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Queues'), ' / ',
    h('a', { href: `#/queues/${encodeURIComponent(queue)}` }, queue), ' / ', h('a', { href: lettersHref(queue) }, 'dead letters'),
    ' / ', id);
  const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Dead letter actions' });
  const body = h('div', { class: 'job-body' }, note('Loading…'));
  main.append(crumbs, h('div', { class: 'page-head' }, h('h1', {}, `Dead letter ${id}`), actions), body);

  function draw(letter) {
    if (perms.can('OPERATOR', queue)) {
      replace(actions,
        h('button', { type: 'button', class: 'button primary', onclick: replay }, 'Replay'),
        h('button', { type: 'button', class: 'button danger-subtle', onclick: purge }, 'Purge…'));
    }
    replace(body,
      h('div', { class: 'columns' }, section('Summary', facts(letter)),
        section('Payload', h('pre', { class: 'code', tabindex: '0', 'aria-label': 'Job payload' }, json(letter.data)))),
      errors(letter),
      section('Options', h('pre', { class: 'code', tabindex: '0', 'aria-label': 'Job options' }, json(letter.options))));
  }

  async function replay() {
    const result = await replayLetters(client, queue, { ids: [id] });
    if (!result) return;
    replace(actions);
    const [newId] = result.newJobIds;
    replace(body, h('p', { class: 'note', role: 'status' }, `Dead letter ${id} was replayed`,
      newId ? [' as ', h('a', { href: `#/queues/${encodeURIComponent(queue)}/jobs/${encodeURIComponent(newId)}` }, `job ${newId}`)] : '',
      '. ', h('a', { href: lettersHref(queue) }, 'Back to the dead letters'), '.'));
  }

  async function purge() {
    const ok = await confirmDialog({
      title: `Purge dead letter ${id}?`, body: `The copy of job ${id} is deleted for good. This cannot be undone.`,
      confirmLabel: 'Purge', danger: true, typed: id,
    });
    if (ok && await purgeLetters(client, queue, { ids: [id] })) location.hash = lettersHref(queue);
  }

  async function load() {
    try {
      const { deadLetter } = await client.request(LETTER, { queue, id });
      if (!deadLetter) {
        replace(actions);
        replace(body, note(`There is no dead letter ${id} in ${queue} (it may have been replayed or purged).`, 'error'));
        return;
      }
      draw(deadLetter);
    } catch (error) {
      replace(body, note(`Cannot load the dead letter: ${describeError(error)}`, 'error'));
    }
  }

  load();
  ctx.onReconnect(load);
  return null;
}
