// A job's place in a flow or chain: its parent (a link above), its children as a nested list loaded lazily
// (each with its state and a link), and the results of its completed children.

import { h, replace } from '../dom.js';
import { json } from '../format.js';
import { describeError, note, section, stateBadge } from '../ui.js';

export const MAX_CHILDREN = 100; // shown per level; the rest are counted in a note
const CHILD_FIELDS = 'id queue type state children { id }';
const FLOW_QUERY = `query JobFlow($id: ID!, $queue: String!) {
  job(id: $id, queue: $queue) { parent { id queue type state } childrenResults children { ${CHILD_FIELDS} } }
}`;
const CHILDREN_QUERY = `query JobChildren($id: ID!, $queue: String!) {
  job(id: $id, queue: $queue) { children { ${CHILD_FIELDS} } }
}`;

export function jobHref(job) {
  return `#/queues/${encodeURIComponent(job.queue)}/jobs/${encodeURIComponent(job.id)}`;
}

function jobLink(job) {
  return h('a', { href: jobHref(job), class: 'flow-link' }, `${job.type} · ${job.id}`);
}

/** One child: its state, a link, and (when it has children of its own) a button that loads them. */
function childItem(client, child, depth) {
  const count = child.children.length;
  const item = h('li', { class: 'flow-child', dataset: { job: child.id, queue: child.queue } },
    stateBadge(child.state), ' ', jobLink(child), child.queue && h('span', { class: 'muted' }, ` in ${child.queue}`));
  if (!count) return item;
  const nested = h('div', { class: 'flow-nested', id: `flow-${depth}-${child.queue}-${child.id}`.replace(/[^\w-]/g, '_') });
  const word = `${count} child${count === 1 ? '' : 'ren'}`;
  const toggle = h('button', {
    type: 'button', class: 'button subtle small', 'aria-expanded': 'false', 'aria-controls': nested.id,
    'aria-label': `Show the ${word} of job ${child.id}`,
  }, word);
  let loaded = false;
  toggle.addEventListener('click', async () => {
    const open = toggle.getAttribute('aria-expanded') !== 'true';
    toggle.setAttribute('aria-expanded', String(open));
    nested.hidden = !open;
    if (!open || loaded) return;
    loaded = true;
    replace(nested, note('Loading children…'));
    try {
      const data = await client.request(CHILDREN_QUERY, { id: child.id, queue: child.queue });
      replace(nested, childList(client, data.job ? data.job.children : [], depth + 1));
    } catch (error) {
      loaded = false;
      replace(nested, note(`Cannot load the children: ${describeError(error)}`, 'error'));
    }
  });
  item.append(' ', toggle, nested);
  return item;
}

function childList(client, children, depth = 0) {
  if (!children.length) return note('No children.');
  const shown = children.slice(0, MAX_CHILDREN);
  const more = children.length - shown.length;
  return h('div', {},
    h('ul', { class: 'flow-children', 'aria-label': depth ? 'Children' : 'Children of this job' },
      shown.map((child) => childItem(client, child, depth))),
    more > 0 && note(`${more} more not shown (the first ${MAX_CHILDREN} are listed).`));
}

/**
 * The flow section of a job page: hidden unless the job has a parent or children. `refresh()` loads it
 * (first and whenever the job changed).
 */
export function flowSection(client, queue, id) {
  const slot = h('div', { class: 'flow-slot', hidden: true });

  async function refresh() {
    let job;
    try {
      job = (await client.request(FLOW_QUERY, { id, queue })).job;
    } catch (error) {
      slot.hidden = false;
      replace(slot, section('Flow', note(`Cannot load the flow: ${describeError(error)}`, 'error')));
      return;
    }
    const hasResults = job && Object.keys(job.childrenResults || {}).length > 0;
    if (!job || (!job.parent && !job.children.length && !hasResults)) {
      slot.hidden = true;
      replace(slot);
      return;
    }
    slot.hidden = false;
    replace(slot, section('Flow',
      job.parent && h('p', { class: 'flow-parent' }, 'Parent: ', stateBadge(job.parent.state), ' ',
        h('a', { href: jobHref(job.parent), class: 'flow-link', 'aria-label': `Parent job ${job.parent.id}` },
          `${job.parent.type} · ${job.parent.id}`),
        h('span', { class: 'muted' }, ` in ${job.parent.queue}`)),
      (job.children.length > 0 || !job.parent) && h('h3', {}, `Children (${job.children.length})`),
      (job.children.length > 0 || !job.parent) && childList(client, job.children),
      hasResults && h('h3', {}, "Children's results"),
      hasResults && h('pre', { class: 'code', tabindex: '0', 'aria-label': "Children's results" }, json(job.childrenResults))));
  }

  return { element: slot, refresh };
}
