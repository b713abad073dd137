// The connection: opening and reopening the socket, matching replies to
// requests by request_id, resending what the drop left unanswered, and handing
// pushes to the subscriptions they concern.
import { ConnectionError, TimeoutError, WsbindError, errorDetail } from "./errors.js";
import { clearTimer, globalWebSocket, messageText, setTimer, tokenExpiry, withToken } from "./runtime.js";
import { OPEN } from "./socket.js";
import { Stream } from "./stream.js";
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
export class Client {
    url;
    stats = { connects: 0, resent: 0, duplicatesDropped: 0 };
    opts;
    WS;
    timeoutMs;
    baseMs;
    maxMs;
    ws = null;
    currentState = "connecting";
    /** Generation of the open connection; 0 while none is open. */
    gen = 0;
    gens = 0;
    openedAt = 0;
    attempt = 0;
    closed = false;
    reconnectTimer;
    refreshTimer;
    /** The exp of the token the socket being opened (or open) presented, in ms. */
    expiresAt = null;
    seq = 0;
    pending = new Map();
    subs = new Set();
    streams = new Map();
    readyWaiters = [];
    /** Use connect(). */
    constructor(url, opts = {}) {
        const WS = opts.WebSocket ?? globalWebSocket();
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
    get state() {
        return this.currentState;
    }
    /** The stream of that name; its methods send requests on this client's connection. */
    stream(name) {
        let s = this.streams.get(name);
        if (!s) {
            s = new Stream(this, name);
            this.streams.set(name, s);
        }
        return s;
    }
    /** Resolves when a connection is open (at once if one is); rejects if the client is closed first. */
    ready() {
        if (this.gen !== 0)
            return Promise.resolve();
        if (this.closed)
            return Promise.reject(new ConnectionError("wsbind: client closed"));
        return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
    }
    /**
     * Closes the connection for good: requests waiting for a reply fail with a
     * ConnectionError, and subscriptions end.
     */
    close() {
        if (this.closed)
            return;
        this.closed = true;
        clearTimer(this.reconnectTimer);
        clearTimer(this.refreshTimer);
        const ws = this.ws;
        if (ws)
            this.detach(ws, 1000, "client closed");
        this.gen = 0;
        for (const sub of [...this.subs])
            sub._end();
        this.subs.clear();
        for (const p of [...this.pending.values()]) {
            this.settle(p);
            p.done(new ConnectionError("wsbind: client closed", p.info), null);
        }
        for (const w of this.readyWaiters.splice(0))
            w.reject(new ConnectionError("wsbind: client closed"));
        this.setState("closed", { attempt: this.attempt });
    }
    /** @internal Sends a request; resolves with the reply's payload, rejects with a WsbindError for status >= 400. */
    _request(stream, payload, spec) {
        return new Promise((resolve, reject) => {
            this._call(stream, payload, spec, (error, reply) => (error ? reject(error) : resolve(reply)));
        });
    }
    /**
     * @internal _request with a callback, called as the reply's frame is
     * handled: before any frame after it, which a promise could not promise.
     */
    _call(stream, payload, spec, done) {
        const requestId = String(++this.seq);
        const key = typeof payload["idempotency_key"] === "string" ? payload["idempotency_key"] : null;
        const info = { stream, action: String(payload["action"]), requestId, idempotencyKey: key };
        if (this.closed) {
            done(new ConnectionError("wsbind: client closed", info), null);
            return;
        }
        const timeoutMs = spec.timeoutMs ?? this.timeoutMs;
        const p = {
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
            if (this.pending.get(requestId) !== p)
                return;
            this.settle(p);
            done(new TimeoutError(timeoutMs, info), null);
        }, timeoutMs);
        this.pending.set(requestId, p);
        this.send(p);
    }
    /** @internal */
    _addSubscription(sub) {
        this.subs.add(sub);
    }
    /** @internal */
    _removeSubscription(sub) {
        this.subs.delete(sub);
    }
    /** @internal Whether a connection is open now. */
    _isOpen() {
        return this.gen !== 0;
    }
    /** @internal Whether close() was called. */
    _isClosed() {
        return this.closed;
    }
    /** @internal The client's default timeout. */
    _timeoutMs() {
        return this.timeoutMs;
    }
    /**
     * @internal Drops the connection and opens another: what a "Token expired"
     * reply or a lost subscription calls for.
     */
    _reconnect(reason) {
        const ws = this.ws;
        if (ws && !this.closed)
            this.lost(ws, { code: 4000, reason });
    }
    send(p) {
        const ws = this.ws;
        if (this.gen === 0 || !ws || ws.readyState !== OPEN)
            return;
        try {
            ws.send(JSON.stringify({ stream: p.info.stream, payload: p.payload }));
        }
        catch {
            return; // the socket is going; the request waits for the next one
        }
        p.sentOn = this.gen;
        p.sends++;
        if (p.sends > 1)
            this.stats.resent++;
    }
    settle(p) {
        this.pending.delete(p.info.requestId);
        clearTimer(p.timer);
        clearTimer(p.retryTimer);
    }
    async openSocket() {
        if (this.closed)
            return;
        this.setState("connecting", { attempt: this.attempt });
        let url;
        try {
            const t = this.opts.token;
            const token = typeof t === "function" ? await t() : t;
            url = withToken(this.url, token);
            this.expiresAt = typeof t === "function" ? tokenExpiry(token) : null;
        }
        catch (error) {
            this.retry({ error });
            return;
        }
        if (this.closed)
            return;
        let ws;
        try {
            ws = new this.WS(url);
        }
        catch (error) {
            this.retry({ error });
            return;
        }
        this.ws = ws;
        const handshake = setTimer(() => {
            if (this.ws === ws && this.gen === 0)
                this.lost(ws, { reason: "handshake timed out" });
        }, this.timeoutMs);
        ws.onopen = () => {
            clearTimer(handshake);
            if (this.ws === ws)
                this.opened();
        };
        ws.onmessage = (event) => {
            if (this.ws === ws)
                this.receive(event.data);
        };
        ws.onclose = (event) => {
            clearTimer(handshake);
            if (this.ws === ws) {
                const info = {};
                if (typeof event?.code === "number")
                    info.code = event.code;
                if (typeof event?.reason === "string" && event.reason)
                    info.reason = event.reason;
                this.lost(ws, info);
            }
        };
        ws.onerror = (event) => {
            // A close event follows in browsers and in ws; this covers sockets that never open.
            if (this.ws === ws && this.gen === 0) {
                clearTimer(handshake);
                this.lost(ws, { error: event?.error ?? event });
            }
        };
    }
    opened() {
        this.gen = ++this.gens;
        this.openedAt = Date.now();
        this.stats.connects++;
        this.setState("open", { attempt: this.attempt });
        if (this.expiresAt !== null && this.expiresAt > this.openedAt) {
            const left = this.expiresAt - this.openedAt;
            const delay = left - Math.min(REFRESH_AHEAD_MS, left / 2);
            // Past setTimeout's range (24.8 days) the connection's 2 h lifetime comes first.
            if (delay <= MAX_TIMER_MS)
                this.refreshTimer = setTimer(() => this._reconnect("token expiring"), delay);
        }
        for (const w of this.readyWaiters.splice(0))
            w.resolve();
        for (const sub of [...this.subs])
            sub._connectionOpened();
        for (const p of [...this.pending.values()]) {
            if (p.sentOn !== this.gen && p.retryTimer === undefined)
                this.send(p);
        }
    }
    /** The connection ended (or never opened): fail or keep what was in flight, then retry. */
    lost(ws, info) {
        if (this.ws !== ws)
            return;
        const wasOpen = this.gen !== 0;
        clearTimer(this.refreshTimer);
        this.detach(ws, 4000, info.reason ?? "reconnecting");
        this.gen = 0;
        if (wasOpen && Date.now() - this.openedAt >= STABLE_MS)
            this.attempt = 0;
        // Subscriptions first: the subscribes failing below are then already void.
        for (const sub of [...this.subs])
            sub._connectionLost();
        for (const p of [...this.pending.values()]) {
            if (p.resend) {
                p.sentOn = 0;
            }
            else {
                this.settle(p);
                p.done(new ConnectionError("wsbind: connection lost before the reply", p.info), null);
            }
        }
        this.retry(info);
    }
    detach(ws, code, reason) {
        ws.onopen = null;
        ws.onmessage = null;
        ws.onclose = null;
        // Not null: ws reports a close before the handshake as an error event,
        // and an error without a listener would be thrown.
        ws.onerror = () => { };
        if (this.ws === ws)
            this.ws = null;
        try {
            ws.close(code, reason.slice(0, 120));
        }
        catch {
            // already closed, or closing before open: nothing more to do
        }
    }
    retry(info) {
        if (this.closed)
            return;
        this.attempt++;
        const cap = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt - 1, 30));
        const delayMs = Math.round(Math.random() * cap);
        this.setState("reconnecting", { attempt: this.attempt, delayMs, ...info });
        this.reconnectTimer = setTimer(() => void this.openSocket(), delayMs);
    }
    setState(state, info) {
        this.currentState = state;
        this.opts.onState?.(state, info);
    }
    receive(raw) {
        const text = messageText(raw);
        if (text === null)
            return;
        let msg;
        try {
            msg = JSON.parse(text);
        }
        catch {
            return;
        }
        const frame = msg;
        if (frame === null || typeof frame !== "object" || frame.payload === null || typeof frame.payload !== "object") {
            this.opts.onGatewayMessage?.(msg);
            return;
        }
        const payload = frame.payload;
        if (typeof payload.response_status === "number") {
            this.reply(payload, payload.response_status);
        }
        else if (typeof frame.stream === "string") {
            for (const sub of [...this.subs]) {
                if (sub.stream === frame.stream)
                    sub._offer(payload);
            }
        }
    }
    reply(payload, status) {
        const id = payload.request_id;
        const p = typeof id === "string" ? this.pending.get(id) : undefined;
        if (!p)
            return; // a request that timed out, or one of another client
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
                if (this.pending.get(p.info.requestId) === p && p.sentOn === 0)
                    this.send(p);
            }, Math.min(1000, 50 * 2 ** p.busyRetries));
            return;
        }
        this.settle(p);
        if (status >= 400)
            p.done(new WsbindError(status, errors, p.info), null);
        else
            p.done(null, payload);
    }
}
function has(errors, message) {
    return Array.isArray(errors) && errors.includes(message);
}
/**
 * Opens a client for the wsbind API at url (ws:// or wss://). It returns at
 * once; requests made before the connection opens wait for it.
 *
 * S maps stream names to their object types, for typed streams:
 * `connect<Streams>(url)` with a generated `interface Streams { questions: Question }`.
 */
export function connect(url, opts = {}) {
    return new Client(url, opts);
}
