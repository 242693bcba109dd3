// Who is signed in: the API token (kept in sessionStorage, gone when the tab closes) and what its role allows.

const KEY = 'conveyor.token';
const RANK = { VIEWER: 0, OPERATOR: 1, ADMIN: 2 };

export function storedToken() {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function storeToken(token) {
  if (token) sessionStorage.setItem(KEY, token);
  else sessionStorage.removeItem(KEY);
}

export const ME_QUERY = 'query Me { me { name role queues anonymous } }';

/** Whether the server serves the dashboard read-only (CONVEYOR_DASHBOARD_READ_ONLY; it then refuses changes
 * from browsers too, so hiding the controls is only the courtesy). */
export function readOnly() {
  return document.querySelector('meta[name="conveyor-read-only"]')?.content === 'true';
}

/** The caller's permissions. `may('ADMIN', queue)`: the role and queue scope allow it (to see what needs that
 * role); `can(role, queue)`: to change something, which a read-only dashboard never offers above a viewer's. */
export function permissions(me, { readOnly: locked = false } = {}) {
  function may(role, queue = null) {
    if (!me || RANK[me.role] < RANK[role]) return false;
    return !queue || !me.queues || me.queues.includes(queue);
  }
  return {
    me,
    readOnly: locked,
    may,
    can(role, queue = null) {
      return !(locked && RANK[role] > RANK.VIEWER) && may(role, queue);
    },
  };
}
