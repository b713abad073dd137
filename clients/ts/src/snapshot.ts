// A materialized view of a stream: every object (matching a filter) in a Map,
// kept current by a subscription, and rebuilt by listing again whenever the
// subscription reports a gap.

import { ConnectionError, WsbindError } from "./errors.js";
import { matchesFilter, type Filter } from "./filter.js";
import { sleep } from "./runtime.js";
import type { Stream } from "./stream.js";
import type { Subscription } from "./subscription.js";
import type { ChangeAction, Listing, SubscriptionEvent } from "./types.js";

export interface SnapshotOptions<T extends object> {
  /** Only objects whose fields equal these values (applied to the listing and the subscription). */
  filter?: Filter;
  /** Called after every change of the view: with the event, or null after a (re)listing. */
  onChange?: (snapshot: Snapshot<T>, event: SubscriptionEvent<T> | null) => void;
  /** Called when listing again after a gap fails; the snapshot retries unless the server refused. */
  onError?: (error: Error) => void;
  /** Timeout of each request; the client's by default. */
  timeoutMs?: number;
}

const ALL: readonly ChangeAction[] = ["create", "update", "delete"];
const RETRY_MS = 1000;

/** A stream's objects by pk, kept up to date. Create it with snapshot(stream) or stream.snapshot(). */
export class Snapshot<T extends object> {
  readonly stream: Stream<T>;
  readonly filter: Filter | null;

  private readonly opts: SnapshotOptions<T>;
  private readonly map = new Map<string, T>();
  /** The highest version seen per pk, deletes included, so that nothing older is applied after them. */
  private readonly versions = new Map<string, number>();
  /** While a listing runs: the pks that changes touched meanwhile, which the listing must not overwrite. */
  private touched: Set<string> | null = null;
  private sub: Subscription<T> | null = null;
  private resyncing: Promise<void> | null = null;
  private again = false;
  private closed = false;
  private relists = 0;

  /** Use snapshot() or stream.snapshot(). */
  constructor(stream: Stream<T>, opts: SnapshotOptions<T>) {
    this.stream = stream;
    this.opts = opts;
    this.filter = opts.filter && Object.keys(opts.filter).length > 0 ? opts.filter : null;
  }

  /** The objects, by pk. The map is live: it changes as events arrive. */
  get objects(): ReadonlyMap<string, T> {
    return this.map;
  }

  /** The subscription that keeps the view current. */
  get subscription(): Subscription<T> {
    if (!this.sub) throw new Error("wsbind: snapshot not started");
    return this.sub;
  }

  /** How many times the view was listed again after a gap. */
  get resyncs(): number {
    return this.relists;
  }

  /** Stops following changes; the map keeps its last state. */
  async close(): Promise<void> {
    this.closed = true;
    await this.sub?.unsubscribe();
  }

  /** @internal */
  async _start(): Promise<void> {
    const timeoutMs = this.opts.timeoutMs;
    const listing = await this.stream.listAll({ timeoutMs });
    const base = { action: ALL, onEvent: (e: SubscriptionEvent<T>) => this.apply(e), timeoutMs };
    const filter = this.filter ? { filter: this.filter } : {};
    if (listing.cursor !== null) {
      // Listed at a position: the subscription replays every change after it.
      this.merge(listing, new Set());
      this.sub = this.stream.subscribe({ ...base, ...filter, since: listing.cursor });
      await this.ready();
    } else {
      // A server without cursors: subscribe first, so that changes made while
      // listing are pushed, then list; pushes win over the listing.
      this.sub = this.stream.subscribe({ ...base, ...filter });
      await this.ready();
      await this.relist();
    }
    this.opts.onChange?.(this, null);
  }

  private async ready(): Promise<void> {
    try {
      await this.sub!.ready;
    } catch (e) {
      this.closed = true;
      throw e;
    }
  }

  private apply(e: SubscriptionEvent<T>): void {
    if (this.closed) return;
    if (e.gap) {
      this.resync();
      return;
    }
    const known = this.versions.get(e.pk);
    if (e.version !== null) {
      if (known !== undefined && e.version <= known) return;
      this.versions.set(e.pk, e.version);
    }
    this.touched?.add(e.pk);
    if (e.action === "delete") {
      this.map.delete(e.pk);
    } else if (e.truncated) {
      void this.fetch(e.pk);
      return;
    } else {
      this.map.set(e.pk, e.data);
    }
    this.opts.onChange?.(this, e);
  }

  /** Reads an object the server could not send in full (a truncated push or list entry). */
  private async fetch(pk: string): Promise<void> {
    try {
      const r = await this.stream.retrieve(pk, { timeoutMs: this.opts.timeoutMs });
      const known = this.versions.get(pk);
      if (r.version !== null) {
        if (known !== undefined && r.version < known) return;
        this.versions.set(pk, r.version);
      }
      if (matchesFilter(this.filter, r.data)) this.map.set(pk, r.data);
      else this.map.delete(pk);
    } catch (e) {
      if (e instanceof WsbindError && e.status === 404) this.map.delete(pk);
      else if (e instanceof Error) this.opts.onError?.(e);
    }
    if (!this.closed) this.opts.onChange?.(this, null);
  }

  /** Lists again after a gap; one relisting at a time, and one more if a gap came meanwhile. */
  private resync(): void {
    this.relists++;
    if (this.resyncing) {
      this.again = true;
      return;
    }
    this.resyncing = (async () => {
      do {
        this.again = false;
        try {
          await this.relist();
          if (!this.closed) this.opts.onChange?.(this, null);
        } catch (e) {
          if (this.closed || !(e instanceof Error)) break;
          this.opts.onError?.(e);
          if (!(e instanceof ConnectionError)) break; // refused: retrying would be refused too
          await sleep(RETRY_MS);
          this.again = true;
        }
      } while (this.again && !this.closed && this.sub?.active !== false);
      this.resyncing = null;
    })();
  }

  private async relist(): Promise<void> {
    const touched = new Set<string>();
    this.touched = touched;
    let listing: Listing<T>;
    try {
      listing = await this.stream.listAll({ timeoutMs: this.opts.timeoutMs });
    } finally {
      if (this.touched === touched) this.touched = null;
    }
    if (this.closed) return;
    this.merge(listing, touched);
    this.sub?._resumeFromIfUnset(listing.cursor);
  }

  /** Takes a listing as the truth for every pk that no change touched while it was read. */
  private merge(listing: Listing<T>, touched: Set<string>): void {
    const fresh = new Map<string, T>();
    for (const obj of listing.data) {
      if (matchesFilter(this.filter, obj)) fresh.set(pkOf(obj), obj);
    }
    const stubs = new Set(listing.truncatedPks);
    for (const [pk, obj] of fresh) if (!touched.has(pk)) this.map.set(pk, obj);
    for (const pk of [...this.map.keys()]) {
      if (!fresh.has(pk) && !touched.has(pk) && !stubs.has(pk)) this.map.delete(pk);
    }
    for (const pk of stubs) if (!touched.has(pk)) void this.fetch(pk);
  }
}

function pkOf(obj: object): string {
  return String((obj as { id?: unknown }).id);
}

/**
 * Every object of a stream (matching opts.filter) in a Map kept up to date:
 * lists all pages, then subscribes to creates, updates and deletes from the
 * first page's cursor, so that no change made meanwhile is missed. Resolves
 * once the view is complete.
 */
export async function snapshot<T extends object>(stream: Stream<T>, opts: SnapshotOptions<T> = {}): Promise<Snapshot<T>> {
  const snap = new Snapshot<T>(stream, opts);
  await snap._start();
  return snap;
}
