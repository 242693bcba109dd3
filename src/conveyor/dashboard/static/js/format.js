// Numbers, times and durations as people read them.

const numbers = new Intl.NumberFormat(undefined);
const decimals = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1, minimumFractionDigits: 1 });

export function count(n) {
  return numbers.format(n ?? 0);
}

/** A rate; "—" while it is not known yet (NaN). */
export function rate(n) {
  if (!Number.isFinite(n)) return '—';
  if (n === 0) return '0';
  return n >= 100 ? numbers.format(Math.round(n)) : decimals.format(n);
}

export function percent(fraction) {
  if (!Number.isFinite(fraction)) return '–';
  return `${decimals.format(fraction * 100)}%`;
}

function pad(n, width = 2) {
  return String(n).padStart(width, '0');
}

/** A timestamp as local date and time, e.g. 2025-01-31 14:03:09. */
export function dateTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '–';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function time(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A duration in milliseconds: 850 ms, 3.2 s, 4 min 10 s, 2 h 5 min, 3 d 4 h. */
export function duration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const sec = ms / 1000;
  if (sec < 60) return `${decimals.format(sec)} s`;
  const min = Math.floor(sec / 60);
  if (min < 60) return `${min} min ${Math.floor(sec % 60)} s`;
  const hours = Math.floor(min / 60);
  if (hours < 48) return `${hours} h ${min % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** How long ago a timestamp was, e.g. "4 s ago". */
export function ago(iso, now = Date.now()) {
  if (!iso) return '–';
  const ms = now - new Date(iso).getTime();
  return ms < 1000 ? 'just now' : `${duration(ms).replace(/\.\d/, '')} ago`;
}

export function between(startIso, endIso) {
  if (!startIso || !endIso) return null;
  return new Date(endIso).getTime() - new Date(startIso).getTime();
}

const PRIORITY_NAMES = { 1: 'critical', 2: 'high', 3: 'normal', 4: 'low' };

/** A BullMQ priority as people read it: lower numbers run first, 0 means none (first in, first out). */
export function priority(n) {
  if (!n) return 'none (first in, first out)';
  return PRIORITY_NAMES[n] ? `${PRIORITY_NAMES[n]} (${n})` : `${count(n)} (lower runs first)`;
}

/** Which attempt a job is at: the one running for an active job (counted from 1), else the ones made. */
export function attempts(job) {
  if (job.state === 'ACTIVE') return `${Math.min(job.attempts + 1, job.maxAttempts)} of ${job.maxAttempts}`;
  return `${job.attempts} of ${job.maxAttempts}`;
}

/** A size in bytes: 812 B, 1.5 MiB, 2.0 GiB. */
export function bytes(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${decimals.format(value)} ${units[unit]}`;
}

/** A JSON value, pretty-printed. */
export function json(value) {
  if (value === undefined) return '–';
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

/** A one-line preview of a JSON value, cut at `max` characters. */
export function preview(value, max = 80) {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? '';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
