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

/** The caller's permissions: `can('OPERATOR', queue)` is true when the role and queue scope allow it. */
export function permissions(me) {
  return {
    me,
    can(role, queue = null) {
      if (!me || RANK[me.role] < RANK[role]) return false;
      return !queue || !me.queues || me.queues.includes(queue);
    },
  };
}
