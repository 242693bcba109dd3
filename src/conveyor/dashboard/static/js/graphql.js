// The GraphQL client: queries and mutations over HTTP POST, subscriptions over graphql-transport-ws.
// Sockets reconnect by themselves and re-send their subscriptions; a subscription the server ends with a
// passing error (Redis down) is started again. The client reports its state as `status` events.

const PROTOCOL = 'graphql-transport-ws';
// Errors that retrying cannot fix: they are handed to the subscriber instead.
const FINAL_CODES = new Set([
  'UNAUTHENTICATED', 'FORBIDDEN', 'UNKNOWN_QUEUE', 'JOB_NOT_FOUND', 'AMBIGUOUS_JOB', 'BAD_USER_INPUT',
  'GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED', 'LIMIT_EXCEEDED', 'INVALID_EVENT_ID', 'QUERY_TOO_DEEP',
  'TOO_MANY_ALIASES', 'TOO_MANY_TOKENS',
]);
const SOCKET_CAPACITY = 8; // the server allows 10 subscriptions per connection by default
const MAX_BACKOFF_MS = 8000;
// The server is up but cannot check the token yet (Redis is away): "try again later", not a lost connection.
const TRY_AGAIN_LATER = 1013;

export class GraphQLError extends Error {
  constructor(errors) {
    const list = Array.isArray(errors) && errors.length ? errors : [{ message: 'Unknown error' }];
    super(list.map((e) => e.message).join(' '));
    this.errors = list;
    this.code = list[0]?.extensions?.code ?? 'ERROR';
  }
}

export class NetworkError extends Error {
  constructor(message) {
    super(message);
    this.code = 'NETWORK';
  }
}

function backoff(attempt) {
  const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}

class Subscription {
  constructor(client, query, variables, handlers) {
    Object.assign(this, { client, query, variables, handlers });
    this.socket = null;
    this.opId = null;
    this.closed = false;
    this.failures = 0;
    this.timer = null;
  }

  /** Stop receiving; tells the server when the operation is running. */
  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.socket?.detach(this, true);
    this.client.untrouble(this);
  }

  next(payload) {
    if (payload.errors?.length) {
      this.fail(new GraphQLError(payload.errors));
      return;
    }
    this.failures = 0;
    this.client.untrouble(this);
    this.handlers.next?.(payload.data);
  }

  fail(error) {
    this.socket?.detach(this, true);
    if (error.code === 'SUBSCRIPTION_LIMIT') {
      this.client.place(this, { avoidFull: true });
      return;
    }
    if (FINAL_CODES.has(error.code)) {
      this.closed = true;
      this.client.untrouble(this);
      this.handlers.error?.(error);
      if (error.code === 'UNAUTHENTICATED') this.client.emit('unauthorized', {});
      return;
    }
    this.client.trouble(this, error);
    this.retryLater();
  }

  /** The server ended the operation: a finite one is done; a live one is started again. */
  complete() {
    this.socket?.detach(this, false);
    if (this.handlers.live) this.retryLater();
    else {
      this.closed = true;
      this.handlers.complete?.();
    }
  }

  retryLater() {
    clearTimeout(this.timer);
    const delay = backoff(this.failures++);
    this.timer = setTimeout(() => {
      if (!this.closed) this.client.place(this);
    }, delay);
  }
}

class Socket {
  constructor(client) {
    this.client = client;
    this.subs = new Map();
    this.acked = false;
    this.full = false;
    this.attempt = 0;
    this.nextId = 1;
    this.disposed = false;
    this.everUp = false;
    this.unavailable = false; // the server's last answer was "try again later"
    this.open();
  }

  open() {
    this.acked = false;
    const ws = new WebSocket(this.client.wsUrl, PROTOCOL);
    this.ws = ws;
    ws.addEventListener('open', () => this.send({ type: 'connection_init', payload: this.client.initPayload() }));
    ws.addEventListener('message', (event) => this.receive(event.data));
    ws.addEventListener('close', (event) => this.closed(event));
  }

  send(message) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  receive(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    const sub = this.subs.get(message.id);
    switch (message.type) {
      case 'connection_ack':
        this.acked = true;
        this.unavailable = false;
        this.attempt = 0;
        this.everUp = true;
        for (const each of this.subs.values()) this.start(each);
        this.client.refreshStatus();
        break;
      case 'ping':
        this.send({ type: 'pong' });
        break;
      case 'next':
        sub?.next(message.payload || {});
        break;
      case 'error':
        sub?.fail(new GraphQLError(message.payload));
        break;
      case 'complete':
        sub?.complete();
        break;
      default:
        break;
    }
  }

  attach(sub) {
    sub.socket = this;
    sub.opId = String(this.nextId++);
    this.subs.set(sub.opId, sub);
    if (this.subs.size >= SOCKET_CAPACITY) this.full = true;
    if (this.acked) this.start(sub);
  }

  start(sub) {
    this.send({ id: sub.opId, type: 'subscribe', payload: { query: sub.query, variables: sub.variables } });
  }

  detach(sub, tellServer) {
    if (sub.socket !== this) return;
    if (tellServer && this.acked) this.send({ id: sub.opId, type: 'complete' });
    this.subs.delete(sub.opId);
    sub.socket = null;
    if (this.subs.size < SOCKET_CAPACITY - 1) this.full = false;
    if (this.subs.size === 0) this.dispose();
  }

  dispose() {
    this.disposed = true;
    this.client.forget(this);
    this.ws?.close(1000, 'no subscriptions left');
  }

  closed(event) {
    this.acked = false;
    if (this.disposed) return;
    if (event.code === 4403 || event.code === 4401) {
      this.disposed = true;
      this.client.forget(this);
      this.client.emit('unauthorized', {});
      return;
    }
    this.unavailable = event.code === TRY_AGAIN_LATER;
    if (this.unavailable) this.client.problem = new GraphQLError([{ message: event.reason, extensions: { code: 'REDIS_UNAVAILABLE' } }]);
    const delay = backoff(this.attempt++);
    this.client.refreshStatus();
    setTimeout(() => {
      if (!this.disposed) this.open();
    }, delay);
  }
}

export class GraphQLClient extends EventTarget {
  /**
   * @param {string} base the document's base URL; the API is at `graphql` relative to it
   * @param {() => string | null} token the API token to send, if any
   */
  constructor(base, token) {
    super();
    this.httpUrl = new URL('graphql', base).href;
    const ws = new URL('graphql', base);
    ws.protocol = ws.protocol === 'https:' ? 'wss:' : 'ws:';
    this.wsUrl = ws.href;
    this.token = token;
    this.sockets = new Set();
    this.status = 'idle';
    this.everLive = false;
    this.problem = null;
    this.troubled = new Set();
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  initPayload() {
    const token = this.token();
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  /** Run a query or mutation; resolves to its data, rejects with GraphQLError or NetworkError. */
  async request(query, variables = {}) {
    return (await this.requestWithWarnings(query, variables)).data;
  }

  /** As `request`, with the response's `extensions.warnings` (what the server did, but wants said). */
  async requestWithWarnings(query, variables = {}) {
    const headers = { 'content-type': 'application/json', accept: 'application/json' };
    const token = this.token();
    if (token) headers.authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch(this.httpUrl, {
        method: 'POST', headers, body: JSON.stringify({ query, variables }), cache: 'no-store', credentials: 'omit',
      });
    } catch {
      throw new NetworkError('The Conveyor server cannot be reached.');
    }
    let body;
    try {
      body = await response.json();
    } catch {
      throw new NetworkError(`The server answered ${response.status} without a GraphQL response.`);
    }
    if (body.errors?.length) {
      const error = new GraphQLError(body.errors);
      if (error.code === 'UNAUTHENTICATED') this.emit('unauthorized', {});
      throw error;
    }
    return { data: body.data, warnings: body.extensions?.warnings || [] };
  }

  /**
   * Start a subscription. handlers: next(data), error(GraphQLError), complete(), live (true: restart it when
   * the server ends it). Returns an object whose close() stops it.
   */
  subscribe(query, variables, handlers) {
    const sub = new Subscription(this, query, variables || {}, handlers);
    this.place(sub);
    return sub;
  }

  place(sub, { avoidFull = false } = {}) {
    if (sub.closed) return;
    let socket = [...this.sockets].find((each) => !each.full && !each.disposed);
    if (!socket || (avoidFull && socket.subs.size >= SOCKET_CAPACITY)) {
      socket = new Socket(this);
      this.sockets.add(socket);
    }
    socket.attach(sub);
    this.refreshStatus();
  }

  /** Stop every subscription (signing out). */
  closeAll() {
    for (const socket of [...this.sockets]) {
      for (const sub of [...socket.subs.values()]) sub.close();
    }
    for (const sub of [...this.troubled]) sub.close();
  }

  forget(socket) {
    this.sockets.delete(socket);
    this.refreshStatus();
  }

  trouble(sub, error) {
    this.problem = error;
    this.troubled.add(sub);
    this.refreshStatus();
  }

  untrouble(sub) {
    if (this.troubled.delete(sub)) this.refreshStatus();
  }

  /** Recompute the overall state: live, connecting, reconnecting or degraded; emits `status` on change. */
  refreshStatus() {
    const sockets = [...this.sockets];
    let state = 'live';
    const down = sockets.filter((socket) => !socket.acked);
    // A socket the server answered "try again later" reached it: live updates are interrupted, not lost.
    const lost = down.filter((socket) => !socket.unavailable);
    if (lost.length) {
      // Only a connection that was up and dropped is "reconnecting": a socket still opening (the first load,
      // a page that needs one more) or one that never got through before the client was live is "connecting".
      state = this.everLive && lost.some((socket) => socket.everUp || socket.attempt > 0) ? 'reconnecting' : 'connecting';
    } else if (down.length || this.troubled.size > 0) {
      state = 'degraded';
    }
    if (state === 'live') this.everLive = true;
    if (state === this.status) return;
    const previous = this.status;
    this.status = state;
    this.emit('status', { state, previous, problem: this.problem });
  }
}
