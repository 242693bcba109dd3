// The dashboard's entry point: theme, sign-in, the connection indicator and the hash router.

import { GraphQLClient } from './graphql.js';
import { h, replace } from './dom.js';
import { ME_QUERY, permissions, readOnly, storeToken, storedToken } from './session.js';
import { banner, describeError, note } from './ui.js';
import { WORKERS_SUBSCRIPTION } from './live.js';
import * as overview from './pages/overview.js';
import * as queuePage from './pages/queue.js';
import * as jobPage from './pages/job.js';
import * as workersPage from './pages/workers.js';
import * as deadLettersPage from './pages/deadletters.js';
import * as deadLetterPage from './pages/deadletter.js';
import * as schedulesPage from './pages/schedules.js';
import * as tenantsPage from './pages/tenants.js';
import * as codePage from './pages/code.js';

const THEME_KEY = 'conveyor.theme';
const main = document.getElementById('main');
const client = new GraphQLClient(document.baseURI, storedToken);
const reconnectHandlers = new Set();
let perms = null;
let cleanup = null;

// -- theme -------------------------------------------------------------------------------------------

function currentTheme() {
  const stored = localStorage.getItem(THEME_KEY);
  if (stored === 'light' || stored === 'dark') return stored;
  return matchMedia('(prefers-color-scheme: light)').matches ? 'light' : 'dark';
}

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  const other = theme === 'dark' ? 'light' : 'dark';
  const button = document.getElementById('theme-toggle');
  button.setAttribute('aria-label', `Use the ${other} theme`);
  button.title = `Use the ${other} theme`;
}

document.getElementById('theme-toggle').addEventListener('click', () => {
  const next = currentTheme() === 'dark' ? 'light' : 'dark';
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
});
applyTheme(currentTheme());

// -- connection --------------------------------------------------------------------------------------

const LABELS = { idle: 'Idle', connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', degraded: 'Interrupted' };
// A drop shorter than this is not announced (the indicator still shows it); "Reconnected" shows this long.
const LOST_AFTER_MS = 1500;
const RECONNECTED_MS = 4000;
let lostTimer = null;
let lostShown = false;

client.addEventListener('status', (event) => {
  const { state, previous, problem } = event.detail;
  const indicator = document.getElementById('connection');
  indicator.dataset.state = state;
  indicator.textContent = LABELS[state] || state;
  document.body.dataset.connection = state;
  clearTimeout(lostTimer);
  if (state === 'reconnecting' || state === 'degraded') {
    const message = state === 'reconnecting'
      ? 'Lost the connection to the Conveyor server. Reconnecting…'
      : `Live updates are interrupted: ${describeError(problem)} Retrying…`;
    lostTimer = setTimeout(() => {
      lostShown = true;
      banner(message, 'warning');
    }, lostShown ? 0 : LOST_AFTER_MS);
  } else if (state === 'live' && (previous === 'reconnecting' || previous === 'degraded')) {
    // Only what was announced as lost is announced as back; either way the pages reload what they show.
    if (lostShown) banner('Reconnected: live updates resumed.', 'success', { hideAfterMs: RECONNECTED_MS });
    lostShown = false;
    for (const handler of reconnectHandlers) handler();
  }
});

client.addEventListener('unauthorized', () => {
  if (perms === null) return; // signing in: the form reports it
  storeToken(null);
  perms = null;
  showSignIn('The server refused the token (it may have been revoked). Sign in again.');
});

// -- routing -----------------------------------------------------------------------------------------

function parseRoute() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  if (parts[0] === 'workers') return { page: workersPage, nav: 'workers', params, args: {} };
  if (parts[0] === 'schedules') return { page: schedulesPage, nav: 'schedules', params, args: {} };
  if (parts[0] === 'code') return { page: codePage, nav: 'code', params, args: {} };
  if (parts[0] === 'tenants') return { page: tenantsPage, nav: 'tenants', params, args: {} };
  if (parts[0] === 'dead-letters' && parts[1] && parts[2]) {
    return { page: deadLetterPage, nav: 'dead-letters', params, args: { queue: parts[1], id: parts[2] } };
  }
  if (parts[0] === 'dead-letters') return { page: deadLettersPage, nav: 'dead-letters', params, args: { queue: parts[1] || null } };
  if (parts[0] === 'queues' && parts[1] && parts[2] === 'jobs' && parts[3]) {
    return { page: jobPage, nav: null, params, args: { queue: parts[1], id: parts[3] } };
  }
  // A queue or job page is none of the nav's pages (its breadcrumb says where it is): nothing is highlighted.
  if (parts[0] === 'queues' && parts[1]) return { page: queuePage, nav: null, params, args: { queue: parts[1] } };
  return { page: overview, nav: 'overview', params, args: {} };
}

function context(params) {
  const own = new Set();
  return {
    client,
    perms,
    main,
    params,
    onReconnect(handler) {
      own.add(handler);
      reconnectHandlers.add(handler);
    },
    release() {
      for (const handler of own) reconnectHandlers.delete(handler);
    },
    /** Record the page's state in the URL without re-rendering (shareable links, back button). */
    setParams(values) {
      const [path] = (location.hash || '#/').split('?');
      const query = new URLSearchParams();
      for (const [key, value] of Object.entries(values)) if (value) query.set(key, value);
      const text = query.toString();
      history.replaceState(null, '', `${path}${text ? `?${text}` : ''}`);
    },
  };
}

function route() {
  if (perms === null) return;
  cleanup?.();
  cleanup = null;
  const { page, nav, params, args } = parseRoute();
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const ctx = context(params);
  replace(main);
  const stop = page.render(ctx, args);
  cleanup = () => {
    ctx.release();
    stop?.();
  };
  const heading = main.querySelector('h1');
  if (heading && document.activeElement !== document.body && !main.contains(document.activeElement)) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
}

window.addEventListener('hashchange', route);
document.getElementById('skip-link').addEventListener('click', () => main.focus());

// -- signing in --------------------------------------------------------------------------------------

function showWho(me) {
  document.querySelector('.topbar nav').hidden = !me;
  document.getElementById('nav-tenants').hidden = !me || !perms || !tenantsPage.allowed(perms);
  const who = document.getElementById('who');
  const signOut = document.getElementById('sign-out');
  if (!me) {
    who.hidden = true;
    signOut.hidden = true;
    return;
  }
  const scope = me.queues ? ` · ${me.queues.join(', ')}` : '';
  replace(who, h('span', { class: 'who-name' }, me.anonymous ? 'local development' : me.name), ' ',
    h('span', { class: `badge role role-${me.role.toLowerCase()}` }, me.role.toLowerCase()), scope,
    perms?.readOnly ? [' ', h('span', { class: 'badge read-only', id: 'read-only',
      title: 'This dashboard is read-only: it offers no changes, and the server refuses them from browsers' }, 'read-only')] : null);
  who.hidden = false;
  signOut.hidden = me.anonymous;
}

document.getElementById('sign-out').addEventListener('click', () => {
  storeToken(null);
  perms = null;
  cleanup?.();
  cleanup = null;
  client.closeAll();
  workersSub = null;
  document.getElementById('worker-count').hidden = true;
  showWho(null);
  showSignIn('Signed out.');
});

function showSignIn(message = '') {
  cleanup?.();
  cleanup = null;
  showWho(null);
  document.getElementById('connection').dataset.state = 'idle';
  document.getElementById('connection').textContent = 'Signed out';
  const input = h('input', { id: 'token', name: 'token', type: 'password', required: true, autocomplete: 'off',
    spellcheck: 'false', 'aria-describedby': 'token-help' });
  const error = h('p', { class: 'form-error', role: 'alert' }, message);
  const form = h('form', { class: 'signin panel', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in'),
    h('label', { for: 'token' }, 'API token'),
    input,
    h('p', { id: 'token-help', class: 'help' }, 'Ask an admin for a token, or create one with ',
      h('code', {}, 'conveyor token create --name you --role viewer'),
      '. It is kept only in this browser tab.'),
    error,
    h('button', { type: 'submit', class: 'button primary' }, 'Sign in'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    storeToken(input.value.trim());
    try {
      await start();
    } catch (err) {
      storeToken(null);
      error.textContent = err.code === 'UNAUTHENTICATED'
        ? 'That token is not valid: it may be mistyped or revoked.'
        : describeError(err);
      input.focus();
    }
  });
  replace(main, form);
  input.focus();
}

// One subscription lives as long as the session: the top bar's worker count. It also keeps a connection
// open on every page, so a server restart is noticed (and announced) wherever the user is.
let workersSub = null;

function followWorkers() {
  workersSub?.close();
  const label = document.getElementById('worker-count');
  workersSub = client.subscribe(WORKERS_SUBSCRIPTION, {}, {
    live: true,
    next: (data) => {
      const n = data.workers.length;
      label.textContent = `${n} worker${n === 1 ? '' : 's'}`;
      label.hidden = false;
    },
  });
}

async function start() {
  const data = await client.request(ME_QUERY);
  perms = permissions(data.me, { readOnly: readOnly() });
  showWho(data.me);
  followWorkers();
  route();
}

async function boot() {
  replace(main, note('Loading…'));
  try {
    await start();
  } catch (error) {
    if (error.code === 'UNAUTHENTICATED') {
      const had = storedToken();
      storeToken(null);
      showSignIn(had ? 'The stored token was refused (it may have been revoked). Sign in again.' : '');
      return;
    }
    replace(main, note(`${describeError(error)} Retrying…`, 'error'));
    setTimeout(boot, 2000);
  }
}

boot();
