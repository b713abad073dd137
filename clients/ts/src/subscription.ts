// A subscription that outlives connections: subscribed again on every new
// connection from the last cursor it saw, with repeated changes dropped by
// version and missed ones announced as gap events.

import type { Client } from "./client.js";
import { ConnectionError, TimeoutError, WsbindError } from "./errors.js";
import { matchesFilter, type Filter } from "./filter.js";
import { clearTimer, setTimer, type TimerHandle } from "./runtime.js";
import type { ChangeAction, GapEvent, Pk, SubscriptionEvent, WirePayload } from "./types.js";

export interface SubscribeOptions<T> {
  /** The kind of change to follow, or several: each is one subscription on the wire. */
  action: ChangeAction | readonly ChangeAction[];
  /** Only this object's changes. */
  pk?: Pk;
  /** Only objects whose fields equal these values. */
  filter?: Filter;
  /** Resume from this cursor (a push's or a list's): changes after it are replayed first. */
  since?: string;
  /** Called with every event, in order. With it, events are kept for iteration only once iteration starts. */
  onEvent?: (event: SubscriptionEvent<T>) => void;
  /** Called when the subscription ends with an error (a refused subscribe). */
  onError?: (error: Error) => void;
  /** Timeout of each subscribe request; the client's by default. */
  timeoutMs?: number;
}

const ACTIONS: readonly ChangeAction[] = ["create", "update", "delete"];

/**
 * A live subscription: iterate it (`for await (const event of sub)`) or pass
 * onEvent, or both. Events come in the order the server sent them, without
 * repeats: a push whose version is not above the highest seen for its pk is
 * dropped and counted in `duplicates`.
 */
export class Subscription<T> implements AsyncIterable<SubscriptionEvent<T>> {
  readonly stream: string;
  readonly actions: readonly ChangeAction[];
  readonly pk: string | null;
  readonly filter: Filter | null;
  /** Resolves once the server has answered the first subscribe (after its replay); rejects if it refused. */
  readonly ready: Promise<void>;

  private readonly client: Client<any>;
  private readonly opts: SubscribeOptions<T>;
  private readonly queue = new EventQueue<SubscriptionEvent<T>>();
  private readonly versions = new Map<string, number>();
  /** Where each action resumes from: its last push handed over, else its reply's, else since. */
  private readonly cursors = new Map<ChangeAction, string | null>();
  private dropped = 0;
  private phase = 0;
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
  private held = new Map<ChangeAction, WirePayload[]>();
  /**
   * The first action not yet released, whose replayed pushes are handed
   * over as they come (a replay goes in position order, and the actions
   * before it are out): a cut in the middle of a long replay keeps what it
   * delivered. Its live pushes are still held until its reply.
   */
  private streaming: ChangeAction | null = null;
  private phaseDone: Promise<void> = Promise.resolve();
  private established = false;
  private finished = false;
  private iterating = false;
  private readyTimer: TimerHandle | undefined;
  private settleReady!: (error?: Error) => void;

  /** Use stream.subscribe(). */
  constructor(client: Client<any>, stream: string, opts: SubscribeOptions<T>) {
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
    for (const a of actions) this.cursors.set(a, opts.since ?? null);
    this.ready = new Promise<void>((resolve, reject) => {
      this.settleReady = (error) => {
        clearTimer(this.readyTimer);
        this.settleReady = () => {};
        if (error) reject(error);
        else resolve();
      };
    });
    this.ready.catch(() => {}); // its error also reaches onError and the iterator
    const timeoutMs = opts.timeoutMs ?? client._timeoutMs();
    this.readyTimer = setTimer(() => {
      if (this.established || this.finished) return;
      this.fail(
        new TimeoutError(timeoutMs, { stream, action: "subscribe", requestId: "", idempotencyKey: null }),
      );
    }, timeoutMs);
    if (client._isClosed()) {
      this._end();
      return;
    }
    client._addSubscription(this);
    if (client._isOpen()) this.phaseDone = this.subscribe();
  }

  /**
   * The cursor to resume from: the last one seen, else `since` (with
   * several actions, the earliest of theirs); null if there is none.
   */
  get cursor(): string | null {
    let c: string | null = null;
    for (const a of this.actions) {
      const ac = this.cursors.get(a) ?? null;
      if (ac === null) return null;
      c = c === null ? ac : earlier(c, ac);
    }
    return c;
  }

  /** Pushes dropped as already seen. */
  get duplicates(): number {
    return this.dropped;
  }

  /** False once unsubscribed, failed or closed with the client. */
  get active(): boolean {
    return !this.finished;
  }

  /**
   * Ends the subscription: no more events, iteration ends, and the server
   * is told (once any subscribe still in flight has been answered, since the
   * server may handle back-to-back requests in either order).
   */
  async unsubscribe(): Promise<void> {
    if (this.finished) return;
    this.finish();
    this.queue.end();
    this.settleReady(new ConnectionError("wsbind: unsubscribed before the subscription was established"));
    await this.phaseDone;
    if (!this.client._isOpen()) return; // subscriptions end with their connection
    await Promise.allSettled(this.actions.map((a) => this.client._request(this.stream, this.frame("unsubscribe", a, false), { resend: false })));
  }

  [Symbol.asyncIterator](): AsyncIterator<SubscriptionEvent<T>> {
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
  _connectionOpened(): void {
    if (!this.finished) this.phaseDone = this.subscribe();
  }

  /** @internal The connection dropped: whatever subscribe was in flight is void. */
  _connectionLost(): void {
    this.phase++;
    // Not handed over, so their actions' cursors stayed before them: the
    // next phase replays them.
    this.held = new Map();
    this.streaming = null;
  }

  /** @internal The client closed. */
  _end(): void {
    if (this.finished) return;
    this.finish();
    this.settleReady(new ConnectionError("wsbind: client closed"));
    this.queue.end();
  }

  /** @internal Sets the resume position if there is none (a snapshot's relisting). */
  _resumeFromIfUnset(cursor: string | null): void {
    if (cursor === null) return;
    for (const a of this.actions) if (this.cursors.get(a) === null) this.cursors.set(a, cursor);
  }

  /** @internal A push on this subscription's stream: deliver it if it concerns this subscription. */
  _offer(p: WirePayload): void {
    if (this.finished) return;
    const action = p.action as ChangeAction;
    if (!this.actions.includes(action)) return;
    if (typeof p.pk !== "string" && typeof p.pk !== "number") return;
    const pk = String(p.pk);
    if (this.pk !== null && pk !== this.pk) return;
    if (!matchesFilter(this.filter, p.data)) return;
    const held = this.held.get(action);
    if (held && !(action === this.streaming && p.replay === true)) {
      held.push(p);
      return;
    }
    this.handOver(p, action, pk);
  }

  /** Delivers a push that concerns this subscription, or drops it as a repeat. */
  private handOver(p: WirePayload, action: ChangeAction, pk: string): void {
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
    if (cursor !== null) this.cursors.set(action, cursor);
    const base = {
      gap: false as const,
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
    } else {
      this.emit({ ...base, truncated: false, data: p.data as T });
    }
  }

  /**
   * Sends a subscribe per action; each action's pushes are handed over as
   * its reply comes, in the order create, update, delete (see held), and
   * when all are answered the subscription is (again) established.
   * Replies are handled as their frames are, so that an action is released
   * (and a gap reported) before any push that follows its reply.
   */
  private subscribe(): Promise<void> {
    const id = ++this.phase;
    const order = ACTIONS.filter((a) => this.actions.includes(a));
    this.held = new Map(order.map((a) => [a, []]));
    this.streaming = order[0] ?? null;
    const resubscribe = this.established;
    const since = new Map(this.cursors);
    let outstanding = order.length;
    let failure: Error | null = null;
    let gapReported = false;
    const replies = new Map<ChangeAction, { gap: boolean; cursor: string | null }>();
    const accepted: ChangeAction[] = [];
    // Releases, in order, the actions answered so far; the first one left
    // then streams its replay.
    const release = () => {
      for (const a of order) {
        const held = this.held.get(a);
        if (!held) continue;
        const r = replies.get(a);
        if (!r || failure) {
          if (this.streaming !== a && !failure) {
            this.streaming = a;
            const replayed = held.filter((p) => p.replay === true);
            this.held.set(a, held.filter((p) => p.replay !== true));
            for (const p of inOrder(replayed)) {
              if (this.finished) return;
              this.handOver(p, a, String(p.pk));
            }
          }
          return;
        }
        this.held.delete(a);
        const from = since.get(a) ?? null;
        if (r.gap) {
          this.cursors.set(a, null); // the old position is past use
          if (!gapReported) this.emit(this.gap("server", a));
          gapReported = true;
        } else if (resubscribe && from === null && !gapReported) {
          this.emit(this.gap("reconnect", a));
          gapReported = true;
        }
        for (const p of inOrder(held)) {
          if (this.finished) return;
          this.handOver(p, a, String(p.pk));
        }
        if (r.gap || r.cursor === null) continue;
        const cur = this.cursors.get(a) ?? null;
        // A fresh subscribe's cursor is where it began; a resumed one's,
        // where its replay read to, unless a live push just handed over is
        // further on.
        if (cur === null || (from !== null && earlier(cur, r.cursor) === cur)) this.cursors.set(a, r.cursor);
      }
    };
    return new Promise<void>((phaseDone) => {
      for (const action of order) {
        const frame = this.frame("subscribe", action, true, since.get(action) ?? null);
        this.client._call(this.stream, frame, { timeoutMs: this.opts.timeoutMs, resend: false }, (error, reply) => {
          outstanding--;
          const current = id === this.phase && !this.finished;
          if (current) {
            if (error) failure ??= error;
            else {
              accepted.push(action);
              const data = reply?.data as { gap?: unknown } | null | undefined;
              replies.set(action, { gap: data?.gap === true, cursor: typeof reply?.cursor === "string" ? reply.cursor : null });
              release();
            }
          }
          if (outstanding > 0) return;
          phaseDone();
          if (current) this.phaseEnded(failure, accepted);
        });
      }
    });
  }

  private phaseEnded(failure: Error | null, accepted: ChangeAction[]): void {
    this.held = new Map();
    this.streaming = null;
    if (failure instanceof WsbindError || (failure && !this.established)) {
      this.fail(failure);
      // The actions the server did accept: undo them, best effort.
      for (const a of accepted) {
        this.client._call(this.stream, this.frame("unsubscribe", a, false), { resend: false }, () => {});
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

  private frame(verb: "subscribe" | "unsubscribe", action: ChangeAction, withSince: boolean, since?: string | null) {
    const data: Record<string, unknown> = { action };
    if (this.filter) data["filter"] = this.filter;
    if (withSince && since) data["since"] = since;
    const payload: Record<string, unknown> = { action: verb, data };
    if (this.pk !== null) payload["pk"] = this.pk;
    return payload;
  }

  private gap(reason: GapEvent["reason"], action: ChangeAction): GapEvent {
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

  private emit(event: SubscriptionEvent<T>): void {
    if (this.iterating || !this.opts.onEvent) this.queue.push(event);
    const onEvent = this.opts.onEvent;
    if (onEvent) {
      try {
        onEvent(event);
      } catch (error) {
        // An application error: report it as an event listener's would be,
        // without breaking the delivery of the frame to others.
        setTimer(() => {
          throw error;
        }, 0);
      }
    }
  }

  private finish(): void {
    this.finished = true;
    clearTimer(this.readyTimer);
    this.client._removeSubscription(this);
  }

  private fail(error: Error): void {
    if (this.finished) return;
    this.finish();
    this.settleReady(error);
    this.queue.end(error);
    this.opts.onError?.(error);
  }
}

/** Events waiting for an iterator, and iterators waiting for events. */
class EventQueue<E> {
  private readonly items: E[] = [];
  private readonly waiting: Array<{ resolve: (r: IteratorResult<E>) => void; reject: (e: unknown) => void }> = [];
  private ended = false;
  private error: Error | null = null;

  push(item: E): void {
    if (this.ended) return;
    const w = this.waiting.shift();
    if (w) w.resolve({ value: item, done: false });
    else this.items.push(item);
  }

  end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error ?? null;
    for (const w of this.waiting.splice(0)) {
      const e = this.error;
      this.error = null; // thrown once; after that the iterator is simply done
      if (e) w.reject(e);
      else w.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<E>> {
    if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
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
function inOrder(pending: WirePayload[]): WirePayload[] {
  const byPK = new Map<string, WirePayload[]>();
  for (const p of pending) {
    const pk = String(p.pk);
    const list = byPK.get(pk);
    if (list) list.push(p);
    else byPK.set(pk, [p]);
  }
  for (const list of byPK.values()) {
    list.sort((a, b) => (typeof a.version === "number" ? a.version : 0) - (typeof b.version === "number" ? b.version : 0));
  }
  const next = new Map<string, number>();
  return pending.map((p) => {
    const pk = String(p.pk);
    const i = next.get(pk) ?? 0;
    next.set(pk, i + 1);
    return byPK.get(pk)![i]!;
  });
}

/**
 * The earlier of two cursors; null when either is null (the other is
 * returned) or they cannot be compared (the first is kept). Cursors are
 * opaque to applications; this client knows the server's "1.<ms>" form.
 */
function earlier(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  const ma = /^1\.(\d{1,15})$/.exec(a);
  const mb = /^1\.(\d{1,15})$/.exec(b);
  if (!ma || !mb) return a;
  return Number(mb[1]) < Number(ma[1]) ? b : a;
}
