// The connection: opening and reopening the socket, matching replies to
// requests by request_id, resending what the drop left unanswered, and handing
// pushes to the subscriptions they concern.

import { ConnectionError, TimeoutError, WsbindError, errorDetail, type RequestInfo } from "./errors.js";
import { clearTimer, globalWebSocket, messageText, setTimer, tokenExpiry, withToken, type TimerHandle } from "./runtime.js";
import { OPEN, type WebSocketConstructor, type WebSocketLike } from "./socket.js";
import { Stream } from "./stream.js";
import type { Subscription } from "./subscription.js";
import type { WirePayload } from "./types.js";

/** The map of stream name to object type that a generated `Streams` interface gives. */
export type StreamTypes = Record<string, object>;

/**
 * The constraint on a client's stream map: any type whose properties are
 * object types. Unlike StreamTypes it also admits interfaces, which have no
 * index signature (`interface Streams { questions: Question }`).
 */
export type StreamMap<S> = { [K in keyof S]: object };

/** Returns the token to connect with; called before every connection, so it can refresh. */
export type TokenProvider = () => string | null | undefined | Promise<string | null | undefined>;

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

export interface StateInfo {
  /** Failed attempts since the last connection that stayed up (0 on the first). */
  attempt: number;
  /** For "reconnecting": how long until the next attempt. */
  delayMs?: number;
  /** For "reconnecting": the close code and reason of the connection that ended, if it had one. */
  code?: number;
  reason?: string;
  /** For "reconnecting": what failed, when it was an error (the token provider's, say). */
  error?: unknown;
}

export interface Backoff {
  /** The cap of the first retry's delay; it doubles with every failed attempt. Default 250. */
  baseMs?: number;
  /** The largest cap. Default 30000. */
  maxMs?: number;
}

export interface ConnectOptions {
  /**
   * The JWT, sent as `?token=` (browsers cannot set headers on a WebSocket).
   * A function is called before every connection and reconnection: return a
   * fresh token from it. With a function, the client also reconnects before
   * the token's `exp` (the server stops serving and pushing to a connection
   * whose token expired). Absent or empty: an anonymous connection.
   */
  token?: string | TokenProvider;
  /** The WebSocket class; default globalThis.WebSocket. Node 20 has none: pass the `ws` package's. */
  WebSocket?: WebSocketConstructor;
  /** Default timeout of requests, subscribes and the handshake, in milliseconds. Default 10000. */
  timeoutMs?: number;
  /** Reconnection delays: exponential with full jitter. */
  backoff?: Backoff;
  /** Called on every change of the connection's state. */
  onState?: (state: ConnectionState, info: StateInfo) => void;
  /**
   * Called with API Gateway's own messages (`{"message": "Internal server error", ...}`),
   * which answer a request without saying which: that request will time out.
   */
  onGatewayMessage?: (message: unknown) => void;
}

/** Counters, for monitoring and tests. */
export interface ClientStats {
  /** Connections opened. */
  connects: number;
  /** Requests sent again on a new connection (or after a 409 "in progress"). */
  resent: number;
  /** Pushes dropped by subscriptions as already seen (version not above the highest seen). */
  duplicatesDropped: number;
}

/** @internal */
export interface RequestSpec {
  timeoutMs?: number | undefined;
  /** Send again on the next connection if the connection drops before the reply. */
  resend: boolean;
}

/** @internal Called once with the reply's payload, or the error; synchronously as the frame is handled. */
export type Done = (error: Error | null, payload: WirePayload | null) => void;

interface Pending {
  info: RequestInfo;
  payload: Record<string, unknown>;
  resend: boolean;
  done: Done;
  timer: TimerHandle;
  retryTimer: TimerHandle | undefined;
  /** The connection it was last sent on (a generation number); 0 when it awaits sending. */
  sentOn: number;
  sends: number;
  tokenRetries: number;
  busyRetries: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
/** A connection that stayed up this long resets the backoff. */
const STABLE_MS = 1_000;
/** Reconnect this long before a token's exp (or at half its remaining life, if sooner). */
const REFRESH_AHEAD_MS = 60_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A wsbind client: one WebSocket, reopened whenever it drops, until close().
 * Create it with connect().
 */
export class Client<S extends StreamMap<S> = Record<string, any>> {
  readonly url: string;
  readonly stats: ClientStats = { connects: 0, resent: 0, duplicatesDropped: 0 };

  private readonly opts: ConnectOptions;
  private readonly WS: WebSocketConstructor;
  private readonly timeoutMs: number;
  private readonly baseMs: number;
  private readonly maxMs: number;

  private ws: WebSocketLike | null = null;
  private currentState: ConnectionState = "connecting";
  /** Generation of the open connection; 0 while none is open. */
  private gen = 0;
  private gens = 0;
  private openedAt = 0;
  private attempt = 0;
  private closed = false;
  private reconnectTimer: TimerHandle | undefined;
  private refreshTimer: TimerHandle | undefined;
  /** The exp of the token the socket being opened (or open) presented, in ms. */
  private expiresAt: number | null = null;
  private seq = 0;
  private readonly pending = new Map<string, Pending>();
  private readonly subs = new Set<Subscription<any>>();
  private readonly streams = new Map<string, Stream<any>>();
  private readyWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];

  /** Use connect(). */
  constructor(url: string, opts: ConnectOptions = {}) {
    const WS = opts.WebSocket ?? (globalWebSocket() as WebSocketConstructor | undefined);
    if (!WS) {
      throw new TypeError("wsbind: no WebSocket in this runtime: pass one as the WebSocket option (in Node 20, the ws package's)");
    }
    withToken(url, null); // throws now on a URL that could never connect
    this.url = url;
    this.opts = opts;
    this.WS = WS;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.baseMs = opts.backoff?.baseMs ?? 250;
    this.maxMs = opts.backoff?.maxMs ?? 30_000;
    void this.openSocket();
  }

  /** The connection's state now. */
  get state(): ConnectionState {
    return this.currentState;
  }

  /** The stream of that name; its methods send requests on this client's connection. */
  stream<K extends keyof S & string>(name: K): Stream<S[K]> {
    let s = this.streams.get(name);
    if (!s) {
      s = new Stream<S[K]>(this, name);
      this.streams.set(name, s);
    }
    return s as Stream<S[K]>;
  }

  /** Resolves when a connection is open (at once if one is); rejects if the client is closed first. */
  ready(): Promise<void> {
    if (this.gen !== 0) return Promise.resolve();
    if (this.closed) return Promise.reject(new ConnectionError("wsbind: client closed"));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /**
   * Closes the connection for good: requests waiting for a reply fail with a
   * ConnectionError, and subscriptions end.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimer(this.reconnectTimer);
    clearTimer(this.refreshTimer);
    const ws = this.ws;
    if (ws) this.detach(ws, 1000, "client closed");
    this.gen = 0;
    for (const sub of [...this.subs]) sub._end();
    this.subs.clear();
    for (const p of [...this.pending.values()]) {
      this.settle(p);
      p.done(new ConnectionError("wsbind: client closed", p.info), null);
    }
    for (const w of this.readyWaiters.splice(0)) w.reject(new ConnectionError("wsbind: client closed"));
    this.setState("closed", { attempt: this.attempt });
  }

  /** @internal Sends a request; resolves with the reply's payload, rejects with a WsbindError for status >= 400. */
  _request(stream: string, payload: Record<string, unknown>, spec: RequestSpec): Promise<WirePayload> {
    return new Promise<WirePayload>((resolve, reject) => {
      this._call(stream, payload, spec, (error, reply) => (error ? reject(error) : resolve(reply!)));
    });
  }

  /**
   * @internal _request with a callback, called as the reply's frame is
   * handled: before any frame after it, which a promise could not promise.
   */
  _call(stream: string, payload: Record<string, unknown>, spec: RequestSpec, done: Done): void {
    const requestId = String(++this.seq);
    const key = typeof payload["idempotency_key"] === "string" ? (payload["idempotency_key"] as string) : null;
    const info: RequestInfo = { stream, action: String(payload["action"]), requestId, idempotencyKey: key };
    if (this.closed) {
      done(new ConnectionError("wsbind: client closed", info), null);
      return;
    }
    const timeoutMs = spec.timeoutMs ?? this.timeoutMs;
    const p: Pending = {
      info,
      payload: { ...payload, request_id: requestId },
      resend: spec.resend,
      done,
      timer: undefined,
      retryTimer: undefined,
      sentOn: 0,
      sends: 0,
      tokenRetries: 0,
      busyRetries: 0,
    };
    p.timer = setTimer(() => {
      if (this.pending.get(requestId) !== p) return;
      this.settle(p);
      done(new TimeoutError(timeoutMs, info), null);
    }, timeoutMs);
    this.pending.set(requestId, p);
    this.send(p);
  }

  /** @internal */
  _addSubscription(sub: Subscription<any>): void {
    this.subs.add(sub);
  }

  /** @internal */
  _removeSubscription(sub: Subscription<any>): void {
    this.subs.delete(sub);
  }

  /** @internal Whether a connection is open now. */
  _isOpen(): boolean {
    return this.gen !== 0;
  }

  /** @internal Whether close() was called. */
  _isClosed(): boolean {
    return this.closed;
  }

  /** @internal The client's default timeout. */
  _timeoutMs(): number {
    return this.timeoutMs;
  }

  /**
   * @internal Drops the connection and opens another: what a "Token expired"
   * reply or a lost subscription calls for.
   */
  _reconnect(reason: string): void {
    const ws = this.ws;
    if (ws && !this.closed) this.lost(ws, { code: 4000, reason });
  }

  private send(p: Pending): void {
    const ws = this.ws;
    if (this.gen === 0 || !ws || ws.readyState !== OPEN) return;
    try {
      ws.send(JSON.stringify({ stream: p.info.stream, payload: p.payload }));
    } catch {
      return; // the socket is going; the request waits for the next one
    }
    p.sentOn = this.gen;
    p.sends++;
    if (p.sends > 1) this.stats.resent++;
  }

  private settle(p: Pending): void {
    this.pending.delete(p.info.requestId);
    clearTimer(p.timer);
    clearTimer(p.retryTimer);
  }

  private async openSocket(): Promise<void> {
    if (this.closed) return;
    this.setState("connecting", { attempt: this.attempt });
    let url: string;
    try {
      const t = this.opts.token;
      const token = typeof t === "function" ? await t() : t;
      url = withToken(this.url, token);
      this.expiresAt = typeof t === "function" ? tokenExpiry(token) : null;
    } catch (error) {
      this.retry({ error });
      return;
    }
    if (this.closed) return;
    let ws: WebSocketLike;
    try {
      ws = new this.WS(url);
    } catch (error) {
      this.retry({ error });
      return;
    }
    this.ws = ws;
    const handshake = setTimer(() => {
      if (this.ws === ws && this.gen === 0) this.lost(ws, { reason: "handshake timed out" });
    }, this.timeoutMs);
    ws.onopen = () => {
      clearTimer(handshake);
      if (this.ws === ws) this.opened();
    };
    ws.onmessage = (event: { data?: unknown }) => {
      if (this.ws === ws) this.receive(event.data);
    };
    ws.onclose = (event: { code?: number; reason?: string }) => {
      clearTimer(handshake);
      if (this.ws === ws) {
        const info: { code?: number; reason?: string } = {};
        if (typeof event?.code === "number") info.code = event.code;
        if (typeof event?.reason === "string" && event.reason) info.reason = event.reason;
        this.lost(ws, info);
      }
    };
    ws.onerror = (event: unknown) => {
      // A close event follows in browsers and in ws; this covers sockets that never open.
      if (this.ws === ws && this.gen === 0) {
        clearTimer(handshake);
        this.lost(ws, { error: (event as { error?: unknown })?.error ?? event });
      }
    };
  }

  private opened(): void {
    this.gen = ++this.gens;
    this.openedAt = Date.now();
    this.stats.connects++;
    this.setState("open", { attempt: this.attempt });
    if (this.expiresAt !== null && this.expiresAt > this.openedAt) {
      const left = this.expiresAt - this.openedAt;
      const delay = left - Math.min(REFRESH_AHEAD_MS, left / 2);
      // Past setTimeout's range (24.8 days) the connection's 2 h lifetime comes first.
      if (delay <= MAX_TIMER_MS) this.refreshTimer = setTimer(() => this._reconnect("token expiring"), delay);
    }
    for (const w of this.readyWaiters.splice(0)) w.resolve();
    for (const sub of [...this.subs]) sub._connectionOpened();
    for (const p of [...this.pending.values()]) {
      if (p.sentOn !== this.gen && p.retryTimer === undefined) this.send(p);
    }
  }

  /** The connection ended (or never opened): fail or keep what was in flight, then retry. */
  private lost(ws: WebSocketLike, info: { code?: number; reason?: string; error?: unknown }): void {
    if (this.ws !== ws) return;
    const wasOpen = this.gen !== 0;
    clearTimer(this.refreshTimer);
    this.detach(ws, 4000, info.reason ?? "reconnecting");
    this.gen = 0;
    if (wasOpen && Date.now() - this.openedAt >= STABLE_MS) this.attempt = 0;
    // Subscriptions first: the subscribes failing below are then already void.
    for (const sub of [...this.subs]) sub._connectionLost();
    for (const p of [...this.pending.values()]) {
      if (p.resend) {
        p.sentOn = 0;
      } else {
        this.settle(p);
        p.done(new ConnectionError("wsbind: connection lost before the reply", p.info), null);
      }
    }
    this.retry(info);
  }

  private detach(ws: WebSocketLike, code: number, reason: string): void {
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    // Not null: ws reports a close before the handshake as an error event,
    // and an error without a listener would be thrown.
    ws.onerror = () => {};
    if (this.ws === ws) this.ws = null;
    try {
      ws.close(code, reason.slice(0, 120));
    } catch {
      // already closed, or closing before open: nothing more to do
    }
  }

  private retry(info: { code?: number; reason?: string; error?: unknown }): void {
    if (this.closed) return;
    this.attempt++;
    const cap = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt - 1, 30));
    const delayMs = Math.round(Math.random() * cap);
    this.setState("reconnecting", { attempt: this.attempt, delayMs, ...info });
    this.reconnectTimer = setTimer(() => void this.openSocket(), delayMs);
  }

  private setState(state: ConnectionState, info: StateInfo): void {
    this.currentState = state;
    this.opts.onState?.(state, info);
  }

  private receive(raw: unknown): void {
    const text = messageText(raw);
    if (text === null) return;
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    const frame = msg as { stream?: unknown; payload?: unknown } | null;
    if (frame === null || typeof frame !== "object" || frame.payload === null || typeof frame.payload !== "object") {
      this.opts.onGatewayMessage?.(msg);
      return;
    }
    const payload = frame.payload as WirePayload;
    if (typeof payload.response_status === "number") {
      this.reply(payload, payload.response_status);
    } else if (typeof frame.stream === "string") {
      for (const sub of [...this.subs]) {
        if (sub.stream === frame.stream) sub._offer(payload);
      }
    }
  }

  private reply(payload: WirePayload, status: number): void {
    const id = payload.request_id;
    const p = typeof id === "string" ? this.pending.get(id) : undefined;
    if (!p) return; // a request that timed out, or one of another client
    const errors = errorDetail(payload.errors);
    const refreshable = typeof this.opts.token === "function";
    if (status === 401 && refreshable && has(errors, "Token expired") && (p.tokenRetries < 1 || !p.resend)) {
      // Only a new connection, with a fresh token, will be served again. A
      // request that is resent goes again once on it; the others (subscribes)
      // fail as the connection drops, and their subscription subscribes anew.
      // (With a fixed token a new connection would be refused just the same.)
      p.tokenRetries++;
      p.sentOn = 0;
      this._reconnect("token expired");
      return;
    }
    if (status === 409 && has(errors, "A request with this idempotency_key is in progress; try again.")) {
      // The first send of this key is still running: ask again shortly.
      p.sentOn = 0;
      p.busyRetries++;
      p.retryTimer = setTimer(() => {
        p.retryTimer = undefined;
        if (this.pending.get(p.info.requestId) === p && p.sentOn === 0) this.send(p);
      }, Math.min(1000, 50 * 2 ** p.busyRetries));
      return;
    }
    this.settle(p);
    if (status >= 400) p.done(new WsbindError(status, errors, p.info), null);
    else p.done(null, payload);
  }
}

function has(errors: ReturnType<typeof errorDetail>, message: string): boolean {
  return Array.isArray(errors) && errors.includes(message);
}

/**
 * Opens a client for the wsbind API at url (ws:// or wss://). It returns at
 * once; requests made before the connection opens wait for it.
 *
 * S maps stream names to their object types, for typed streams:
 * `connect<Streams>(url)` with a generated `interface Streams { questions: Question }`.
 */
export function connect<S extends StreamMap<S> = Record<string, any>>(url: string, opts: ConnectOptions = {}): Client<S> {
  return new Client<S>(url, opts);
}
