// The job search language of the queue page, and how it splits between the server and the browser.
//
//   42 or id:42            a job id (glob: id:import-*)
//   type:index-file        the job type (exact: sent to the server)
//   data.filePath:src/*    a data field, by dotted path, matched as a glob (* any text, ? one character)
//   reason:timeout         text in the failed reason
//   "some text"            text anywhere in the id, type, data or failed reason
//
// The server filters by type and by one case-insensitive text (a literal part of the terms); the browser then
// keeps only the jobs that match every term, so the server never sends a page of jobs that cannot match.

const FIELD = /^([A-Za-z_][\w.-]*):(.*)$/;

function tokens(text) {
  // bare words, "quoted text", and key:"quoted value"
  const out = [];
  const pattern = /([\w.-]+:)?"([^"]*)"|(\S+)/g;
  let match;
  while ((match = pattern.exec(text)) !== null) {
    const [, key, quoted, bare] = match;
    if (bare !== undefined) out.push({ value: bare, quoted: false });
    else if (key) out.push({ value: key + quoted, quoted: false });
    else if (quoted) out.push({ value: quoted, quoted: true });
  }
  return out;
}

function escapeRegExp(text) {
  return text.replace(/[.+^${}()|[\]\\]/g, '\\$&');
}

/** A case-insensitive whole-value matcher for a glob with * and ?. */
export function globMatcher(glob) {
  const source = escapeRegExp(glob).replace(/\*/g, '.*').replace(/\?/g, '.');
  const regex = new RegExp(`^${source}$`, 'is');
  return (value) => regex.test(value);
}

function literalOf(glob) {
  // The longest run without wildcards: every match contains it, so the server may filter on it.
  return glob.split(/[*?]/).reduce((best, part) => (part.length > best.length ? part : best), '');
}

function stringify(value) {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function pathValue(data, path) {
  let value = data;
  for (const key of path) {
    if (value === null || typeof value !== 'object' || !(key in value)) return undefined;
    value = value[key];
  }
  return value;
}

function dataTerm(path, glob) {
  const keys = path.split('.').slice(1);
  const matches = globMatcher(glob);
  return {
    literal: literalOf(glob),
    test: (job) => {
      const value = pathValue(job.data, keys);
      if (value === undefined) return false;
      if (Array.isArray(value)) return value.some((item) => matches(stringify(item)));
      return matches(stringify(value));
    },
  };
}

function textTerm(text) {
  const needle = text.toLowerCase();
  return {
    literal: text,
    test: (job) => [job.id, job.type, stringify(job.data), job.failedReason || '']
      .some((part) => part.toLowerCase().includes(needle)),
  };
}

function term(token) {
  const match = token.quoted ? null : FIELD.exec(token.value);
  if (!match) return { kind: 'text', ...textTerm(token.value) };
  const [, key, value] = match;
  if (key === 'id') {
    const test = globMatcher(value);
    return { kind: 'id', literal: literalOf(value), test: (job) => test(job.id) };
  }
  if (key === 'type') {
    const test = globMatcher(value);
    return { kind: 'type', exact: /[*?]/.test(value) ? null : value, literal: literalOf(value), test: (job) => test(job.type) };
  }
  if (key === 'reason' || key === 'error') {
    const needle = value.toLowerCase();
    return { kind: 'reason', literal: value, test: (job) => (job.failedReason || '').toLowerCase().includes(needle) };
  }
  if (key === 'data' || key.startsWith('data.')) {
    if (key === 'data') return { kind: 'text', ...textTerm(value) };
    return { kind: 'data', ...dataTerm(key, value) };
  }
  return { kind: 'text', ...textTerm(token.value) };
}

// A literal is usable on the server only if it appears verbatim in the JSON the server searches.
function serverSafe(literal) {
  return literal.length >= 1 && !/["\\\u0000-\u001f]/.test(literal) && literal.length <= 200;
}

/**
 * Parse a search. Returns {server: {type, search}, test(job) -> boolean, refines: boolean, empty: boolean}:
 * `server` goes to the `jobs` query; `test` must still hold for each job the server returns when `refines`.
 */
export function parseSearch(text) {
  const terms = tokens(text.trim()).map(term);
  const typeTerm = terms.find((t) => t.kind === 'type' && t.exact);
  const candidates = terms.filter((t) => t !== typeTerm && serverSafe(t.literal));
  const best = candidates.reduce((a, b) => (a && a.literal.length >= b.literal.length ? a : b), null);
  const server = { type: typeTerm ? typeTerm.exact : null, search: best ? best.literal : null };
  // The server's text search is the same test as a text term: no refinement needed if that is all there is.
  const rest = terms.filter((t) => t !== typeTerm && !(t === best && t.kind === 'text'));
  return {
    server,
    refines: rest.length > 0,
    empty: terms.length === 0,
    test: (job) => rest.every((t) => t.test(job)),
  };
}

/** A predicate for a time range on a job timestamp field; null when no bound is set. */
export function timeRange(field, from, to) {
  const low = from ? new Date(from).getTime() : null;
  const high = to ? new Date(to).getTime() : null;
  if (low === null && high === null) return null;
  return {
    low,
    high,
    test: (job) => {
      const at = job[field] ? new Date(job[field]).getTime() : null;
      if (at === null) return false;
      return (low === null || at >= low) && (high === null || at <= high);
    },
  };
}
