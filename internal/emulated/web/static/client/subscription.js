// A subscription that outlives connections: subscribed again on every new
// connection from the last cursor it saw, with repeated changes dropped by
// version and missed ones announced as gap events.
import { ConnectionError, TimeoutError, WsbindError } from "./errors.js";
import { matchesFilter } from "./filter.js";
import { clearTimer, setTimer } from "./runtime.js";
const ACTIONS = ["create", "update", "delete"];
/**
 * A live subscription: iterate it (`for await (const event of sub)`) or pass
 * onEvent, or both. Events come in the order the server sent them, without
 * repeats: a push whose version is not above the highest seen for its pk is
 * dropped and counted in `duplicates`.
 */
export class Subscription {
    stream;
    actions;
    pk;
    filter;
    /** Resolves once the server has answered the first subscribe (after its replay); rejects if it refused. */
    ready;
    client;
    opts;
    queue = new EventQueue();
    versions = new Map();
    /** Where each action resumes from: its last push handed over, else its reply's, else since. */
    cursors = new Map();
    dropped = 0;
    phase = 0;
    /**
     * The pushes of each action whose subscribe is in flight. An action's
     * pushes are held until its reply (the end of its replay) and handed
     * over then, each object's in version order; and the actions are
     * released in the order create, update, delete, so that an object's
     * create is handed over before its updates and its updates before its
     * delete, though their replays interleave. An action released keeps its
     * cursor if the connection drops before the others are: a client whose
     * replays take longer than its connections live still moves on.
     */
    held = new Map();
    /**
     * The first action not yet released, whose replayed pushes are handed
     * over as they come (a replay goes in position order, and the actions
     * before it are out): a cut in the middle of a long replay keeps what it
     * delivered. Its live pushes are still held until its reply.
     */
    streaming = null;
    phaseDone = Promise.resolve();
    established = false;
    finished = false;
    iterating = false;
    readyTimer;
    settleReady;
    /** Use stream.subscribe(). */
    constructor(client, stream, opts) {
        const actions = typeof opts.action === "string" ? [opts.action] : [...new Set(opts.action)];
        if (actions.length === 0 || actions.some((a) => !ACTIONS.includes(a))) {
            throw new TypeError(`wsbind: subscribe action must be create, update or delete, not ${JSON.stringify(opts.action)}`);
        }
        this.client = client;
        this.stream = stream;
        this.opts = opts;
        this.actions = actions;
        this.pk = opts.pk === undefined ? null : String(opts.pk);
        this.filter = opts.filter && Object.keys(opts.filter).length > 0 ? opts.filter : null;
        for (const a of actions)
            this.cursors.set(a, opts.since ?? null);
        this.ready = new Promise((resolve, reject) => {
            this.settleReady = (error) => {
                clearTimer(this.readyTimer);
                this.settleReady = () => { };
                if (error)
                    reject(error);
                else
                    resolve();
            };
        });
        this.ready.catch(() => { }); // its error also reaches onError and the iterator
        const timeoutMs = opts.timeoutMs ?? client._timeoutMs();
        this.readyTimer = setTimer(() => {
            if (this.established || this.finished)
                return;
            this.fail(new TimeoutError(timeoutMs, { stream, action: "subscribe", requestId: "", idempotencyKey: null }));
        }, timeoutMs);
        if (client._isClosed()) {
            this._end();
            return;
        }
        client._addSubscription(this);
        if (client._isOpen())
            this.phaseDone = this.subscribe();
    }
    /**
     * The cursor to resume from: the last one seen, else `since` (with
     * several actions, the earliest of theirs); null if there is none.
     */
    get cursor() {
        let c = null;
        for (const a of this.actions) {
            const ac = this.cursors.get(a) ?? null;
            if (ac === null)
                return null;
            c = c === null ? ac : earlier(c, ac);
        }
        return c;
    }
    /** Pushes dropped as already seen. */
    get duplicates() {
        return this.dropped;
    }
    /** False once unsubscribed, failed or closed with the client. */
    get active() {
        return !this.finished;
    }
    /**
     * Ends the subscription: no more events, iteration ends, and the server
     * is told (once any subscribe still in flight has been answered, since the
     * server may handle back-to-back requests in either order).
     */
    async unsubscribe() {
        if (this.finished)
            return;
        this.finish();
        this.queue.end();
        this.settleReady(new ConnectionError("wsbind: unsubscribed before the subscription was established"));
        await this.phaseDone;
        if (!this.client._isOpen())
            return; // subscriptions end with their connection
        await Promise.allSettled(this.actions.map((a) => this.client._request(this.stream, this.frame("unsubscribe", a, false), { resend: false })));
    }
    [Symbol.asyncIterator]() {
        this.iterating = true;
        return {
            next: () => this.queue.next(),
            return: async () => {
                await this.unsubscribe();
                return { value: undefined, done: true };
            },
        };
    }
    /** @internal The client opened a connection: subscribe on it. */
    _connectionOpened() {
        if (!this.finished)
            this.phaseDone = this.subscribe();
    }
    /** @internal The connection dropped: whatever subscribe was in flight is void. */
    _connectionLost() {
        this.phase++;
        // Not handed over, so their actions' cursors stayed before them: the
        // next phase replays them.
        this.held = new Map();
        this.streaming = null;
    }
    /** @internal The client closed. */
    _end() {
        if (this.finished)
            return;
        this.finish();
        this.settleReady(new ConnectionError("wsbind: client closed"));
        this.queue.end();
    }
    /** @internal Sets the resume position if there is none (a snapshot's relisting). */
    _resumeFromIfUnset(cursor) {
        if (cursor === null)
            return;
        for (const a of this.actions)
            if (this.cursors.get(a) === null)
                this.cursors.set(a, cursor);
    }
    /** @internal A push on this subscription's stream: deliver it if it concerns this subscription. */
    _offer(p) {
        if (this.finished)
            return;
        const action = p.action;
        if (!this.actions.includes(action))
            return;
        if (typeof p.pk !== "string" && typeof p.pk !== "number")
            return;
        const pk = String(p.pk);
        if (this.pk !== null && pk !== this.pk)
            return;
        if (!matchesFilter(this.filter, p.data))
            return;
        const held = this.held.get(action);
        if (held && !(action === this.streaming && p.replay === true)) {
            held.push(p);
            return;
        }
        this.handOver(p, action, pk);
    }
    /** Delivers a push that concerns this subscription, or drops it as a repeat. */
    handOver(p, action, pk) {
        const version = typeof p.version === "number" ? p.version : null;
        if (version !== null) {
            const seen = this.versions.get(pk);
            if (seen !== undefined && version <= seen) {
                this.dropped++;
                this.client.stats.duplicatesDropped++;
                return;
            }
            this.versions.set(pk, version);
        }
        const cursor = typeof p.cursor === "string" ? p.cursor : null;
        const replay = p.replay === true;
        if (cursor !== null)
            this.cursors.set(action, cursor);
        const base = {
            gap: false,
            stream: this.stream,
            action,
            pk,
            version,
            cursor,
            replay,
            model: typeof p.model === "string" ? p.model : null,
        };
        if (p.truncated === true || p.data === undefined || p.data === null) {
            this.emit({ ...base, truncated: true, data: null });
        }
        else {
            this.emit({ ...base, truncated: false, data: p.data });
        }
    }
    /**
     * Sends a subscribe per action; each action's pushes are handed over as
     * its reply comes, in the order create, update, delete (see held), and
     * when all are answered the subscription is (again) established.
     * Replies are handled as their frames are, so that an action is released
     * (and a gap reported) before any push that follows its reply.
     */
    subscribe() {
        const id = ++this.phase;
        const order = ACTIONS.filter((a) => this.actions.includes(a));
        this.held = new Map(order.map((a) => [a, []]));
        this.streaming = order[0] ?? null;
        const resubscribe = this.established;
        const since = new Map(this.cursors);
        let outstanding = order.length;
        let failure = null;
        let gapReported = false;
        const replies = new Map();
        const accepted = [];
        // Releases, in order, the actions answered so far; the first one left
        // then streams its replay.
        const release = () => {
            for (const a of order) {
                const held = this.held.get(a);
                if (!held)
                    continue;
                const r = replies.get(a);
                if (!r || failure) {
                    if (this.streaming !== a && !failure) {
                        this.streaming = a;
                        const replayed = held.filter((p) => p.replay === true);
                        this.held.set(a, held.filter((p) => p.replay !== true));
                        for (const p of inOrder(replayed)) {
                            if (this.finished)
                                return;
                            this.handOver(p, a, String(p.pk));
                        }
                    }
                    return;
                }
                this.held.delete(a);
                const from = since.get(a) ?? null;
                if (r.gap) {
                    this.cursors.set(a, null); // the old position is past use
                    if (!gapReported)
                        this.emit(this.gap("server", a));
                    gapReported = true;
                }
                else if (resubscribe && from === null && !gapReported) {
                    this.emit(this.gap("reconnect", a));
                    gapReported = true;
                }
                for (const p of inOrder(held)) {
                    if (this.finished)
                        return;
                    this.handOver(p, a, String(p.pk));
                }
                if (r.gap || r.cursor === null)
                    continue;
                const cur = this.cursors.get(a) ?? null;
                // A fresh subscribe's cursor is where it began; a resumed one's,
                // where its replay read to, unless a live push just handed over is
                // further on.
                if (cur === null || (from !== null && earlier(cur, r.cursor) === cur))
                    this.cursors.set(a, r.cursor);
            }
        };
        return new Promise((phaseDone) => {
            for (const action of order) {
                const frame = this.frame("subscribe", action, true, since.get(action) ?? null);
                this.client._call(this.stream, frame, { timeoutMs: this.opts.timeoutMs, resend: false }, (error, reply) => {
                    outstanding--;
                    const current = id === this.phase && !this.finished;
                    if (current) {
                        if (error)
                            failure ??= error;
                        else {
                            accepted.push(action);
                            const data = reply?.data;
                            replies.set(action, { gap: data?.gap === true, cursor: typeof reply?.cursor === "string" ? reply.cursor : null });
                            release();
                        }
                    }
                    if (outstanding > 0)
                        return;
                    phaseDone();
                    if (current)
                        this.phaseEnded(failure, accepted);
                });
            }
        });
    }
    phaseEnded(failure, accepted) {
        this.held = new Map();
        this.streaming = null;
        if (failure instanceof WsbindError || (failure && !this.established)) {
            this.fail(failure);
            // The actions the server did accept: undo them, best effort.
            for (const a of accepted) {
                this.client._call(this.stream, this.frame("unsubscribe", a, false), { resend: false }, () => { });
            }
            return;
        }
        if (failure) {
            // No answer on an open connection: a subscription may be missing.
            // Subscribing anew on a new connection is the only sure way back.
            this.client._reconnect("subscribe timed out");
            return;
        }
        this.established = true;
        this.settleReady();
    }
    frame(verb, action, withSince, since) {
        const data = { action };
        if (this.filter)
            data["filter"] = this.filter;
        if (withSince && since)
            data["since"] = since;
        const payload = { action: verb, data };
        if (this.pk !== null)
            payload["pk"] = this.pk;
        return payload;
    }
    gap(reason, action) {
        return {
            gap: true,
            reason,
            stream: this.stream,
            action,
            pk: this.pk,
            version: null,
            data: null,
            cursor: null,
            replay: false,
            model: null,
            truncated: false,
        };
    }
    emit(event) {
        if (this.iterating || !this.opts.onEvent)
            this.queue.push(event);
        const onEvent = this.opts.onEvent;
        if (onEvent) {
            try {
                onEvent(event);
            }
            catch (error) {
                // An application error: report it as an event listener's would be,
                // without breaking the delivery of the frame to others.
                setTimer(() => {
                    throw error;
                }, 0);
            }
        }
    }
    finish() {
        this.finished = true;
        clearTimer(this.readyTimer);
        this.client._removeSubscription(this);
    }
    fail(error) {
        if (this.finished)
            return;
        this.finish();
        this.settleReady(error);
        this.queue.end(error);
        this.opts.onError?.(error);
    }
}
/** Events waiting for an iterator, and iterators waiting for events. */
class EventQueue {
    items = [];
    waiting = [];
    ended = false;
    error = null;
    push(item) {
        if (this.ended)
            return;
        const w = this.waiting.shift();
        if (w)
            w.resolve({ value: item, done: false });
        else
            this.items.push(item);
    }
    end(error) {
        if (this.ended)
            return;
        this.ended = true;
        this.error = error ?? null;
        for (const w of this.waiting.splice(0)) {
            const e = this.error;
            this.error = null; // thrown once; after that the iterator is simply done
            if (e)
                w.reject(e);
            else
                w.resolve({ value: undefined, done: true });
        }
    }
    next() {
        if (this.items.length > 0)
            return Promise.resolve({ value: this.items.shift(), done: false });
        if (this.ended) {
            const error = this.error;
            this.error = null; // thrown once; after that the iterator is simply done
            return error ? Promise.reject(error) : Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
    }
}
/**
 * The pushes of a phase as they are handed over: in the order they came,
 * except that each object's changes are put in version order. The replays
 * of several actions interleave with each other and with live pushes (an
 * object's create may come live after one action's replay read the
 * history, and its update in another action's replay), so an object's
 * later version may come first.
 */
function inOrder(pending) {
    const byPK = new Map();
    for (const p of pending) {
        const pk = String(p.pk);
        const list = byPK.get(pk);
        if (list)
            list.push(p);
        else
            byPK.set(pk, [p]);
    }
    for (const list of byPK.values()) {
        list.sort((a, b) => (typeof a.version === "number" ? a.version : 0) - (typeof b.version === "number" ? b.version : 0));
    }
    const next = new Map();
    return pending.map((p) => {
        const pk = String(p.pk);
        const i = next.get(pk) ?? 0;
        next.set(pk, i + 1);
        return byPK.get(pk)[i];
    });
}
/**
 * The earlier of two cursors; null when either is null (the other is
 * returned) or they cannot be compared (the first is kept). Cursors are
 * opaque to applications; this client knows the server's "1.<ms>" form.
 */
function earlier(a, b) {
    if (a === null)
        return b;
    if (b === null)
        return a;
    const ma = /^1\.(\d{1,15})$/.exec(a);
    const mb = /^1\.(\d{1,15})$/.exec(b);
    if (!ma || !mb)
        return a;
    return Number(mb[1]) < Number(ma[1]) ? b : a;
}
