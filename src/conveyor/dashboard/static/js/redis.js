// The Redis panel of the overview: the server under every queue (version, memory, clients, eviction policy,
// uptime). Read once per visit and on demand; tokens limited to queues or a tenant do not see it.

import { h, replace } from './dom.js';
import { bytes, count, duration } from './format.js';
import { describeError, note, section } from './ui.js';

const REDIS_INFO = `query RedisInfo { redisInfo { version mode role uptimeSeconds connectedClients blockedClients
  usedMemoryBytes usedMemoryPeakBytes maxMemoryBytes evictionPolicy } }`;

function memory(info) {
  if (!info.maxMemoryBytes) return `${bytes(info.usedMemoryBytes)} (no limit set)`;
  const share = Math.round((info.usedMemoryBytes / info.maxMemoryBytes) * 100);
  return `${bytes(info.usedMemoryBytes)} of ${bytes(info.maxMemoryBytes)} (${share}%)`;
}

function facts(info) {
  const pairs = [
    ['Version', `${info.version} · ${info.mode} · ${info.role}`],
    ['Memory used', memory(info)],
    ['Peak memory', bytes(info.usedMemoryPeakBytes)],
    ['Clients', `${count(info.connectedClients)} connected${info.blockedClients ? `, ${count(info.blockedClients)} blocked` : ''}`],
    ['Eviction policy', info.evictionPolicy ?? 'unknown'],
    ['Uptime', duration(info.uptimeSeconds * 1000)],
  ];
  return h('dl', { class: 'facts redis-facts' }, pairs.map(([k, v]) => h('div', { dataset: { fact: k } }, h('dt', {}, k), h('dd', {}, v))));
}

/** The panel (hidden until there is something to show) and its `load()`. */
export function redisPanel(client) {
  const body = h('div', {}, note('Loading…'));
  const el = section('Redis', body,
    h('button', { type: 'button', class: 'button subtle', onclick: () => load() }, 'Refresh'));
  el.classList.add('redis-panel');
  el.hidden = true;

  async function load() {
    try {
      const { redisInfo: info } = await client.request(REDIS_INFO);
      const eviction = info.evictionPolicy && info.evictionPolicy !== 'noeviction'
        ? h('p', { class: 'warning' }, `maxmemory-policy is ${info.evictionPolicy}: under memory pressure Redis may evict queue keys and lose jobs. Set it to noeviction.`)
        : null;
      replace(body, facts(info), eviction);
      el.hidden = false;
    } catch (error) {
      if (error.code === 'FORBIDDEN') {
        el.hidden = true; // a token limited to some queues or a tenant does not see the shared server
        return;
      }
      replace(body, note(`Cannot read Redis info: ${describeError(error)}`, 'error'));
      el.hidden = false;
    }
  }
  return { el, load };
}
