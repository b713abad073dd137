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
  private resumeFrom: string | null;
  private dropped = 0;
  private phase = 0;
  private inPhase = false;
  /**
   * The pushes that came while subscribes were in flight: the replays of
   * several actions interleave, and live pushes come between them, so they
   * are handed over when the phase ends, each object's changes in version
   * order. A push handed over early
   * could make an earlier version of its object, replayed later, look
   * like a repeat.
   */
  private pending: WirePayload[] = [];
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
    this.resumeFrom = opts.since ?? null;
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

  /** The cursor the next resubscribe will resume from: the last one seen, else `since`. */
  get cursor(): string | null {
    return this.resumeFrom;
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
    this.inPhase = false;
    // Not handed over, so the cursor stayed before them: the next phase
    // replays them.
    this.pending = [];
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
    if (this.resumeFrom === null && cursor !== null) this.resumeFrom = cursor;
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
    if (this.inPhase) {
      this.pending.push(p);
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
    if (cursor !== null) this.resumeFrom = cursor;
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
   * Sends a subscribe per action; when all are answered the subscription is
   * (again) established. Replies are handled as their frames are, so that
   * the phase ends (and a gap is reported) before any push that follows.
   */
  private subscribe(): Promise<void> {
    const id = ++this.phase;
    this.inPhase = true;
    this.pending = [];
    const resubscribe = this.established;
    const since = this.resumeFrom;
    let outstanding = this.actions.length;
    let failure: Error | null = null;
    let gapAction: ChangeAction | null = null;
    let replyCursor: string | null = null;
    const accepted: ChangeAction[] = [];
    return new Promise<void>((phaseDone) => {
      for (const action of this.actions) {
        const frame = this.frame("subscribe", action, true, since);
        this.client._call(this.stream, frame, { timeoutMs: this.opts.timeoutMs, resend: false }, (error, reply) => {
          outstanding--;
          const current = id === this.phase && !this.finished;
          if (current) {
            if (error) failure ??= error;
            else {
              accepted.push(action);
              const data = reply?.data as { gap?: unknown } | null | undefined;
              if (data?.gap === true) gapAction ??= action;
              // Where the subscription began: a resume point until a push
              // brings a later one.
              else if (typeof reply?.cursor === "string" && since === null) this._resumeFromIfUnset(reply.cursor);
              // A resumed one's: where its replay read to (the earliest of
              // the actions' replies is where all of them read to).
              else if (typeof reply?.cursor === "string") replyCursor = earlier(replyCursor, reply.cursor);
            }
          }
          if (outstanding > 0) return;
          phaseDone();
          if (current) this.phaseEnded(failure, accepted, gapAction, resubscribe && since === null, replyCursor);
        });
      }
    });
  }

  private phaseEnded(
    failure: Error | null,
    accepted: ChangeAction[],
    gapAction: ChangeAction | null,
    noCursor: boolean,
    replyCursor: string | null,
  ): void {
    this.inPhase = false;
    const pending = this.pending;
    this.pending = [];
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
    if (gapAction !== null) {
      this.resumeFrom = null; // the old position is past use
      this.emit(this.gap("server", gapAction));
    } else if (noCursor) {
      this.emit(this.gap("reconnect", this.actions[0]!));
    }
    for (const p of inOrder(pending)) {
      if (this.finished) return;
      this.handOver(p, p.action as ChangeAction, String(p.pk));
    }
    // The replays read up to replyCursor: resume from there next time,
    // unless a live push handed over just now is further on.
    if (gapAction === null && replyCursor !== null && (this.resumeFrom === null || earlier(this.resumeFrom, replyCursor) === this.resumeFrom)) {
      this.resumeFrom = replyCursor;
    }
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
