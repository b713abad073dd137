// One binding's actions as methods: the requests of protocol §3, their replies
// as typed values.

import type { Client } from "./client.js";
import { WsbindError } from "./errors.js";
import { newKey } from "./runtime.js";
import { snapshot, type Snapshot, type SnapshotOptions } from "./snapshot.js";
import { Subscription, type SubscribeOptions } from "./subscription.js";
import type {
  ActionOptions,
  ListOptions,
  Listing,
  Page,
  Pk,
  Reply,
  RequestOptions,
  VersionedWriteOptions,
  WirePayload,
  WriteOptions,
  WriteReply,
} from "./types.js";

/** A stream (binding) of objects of type T, on one client. Get it from client.stream(name). */
export class Stream<T extends object> {
  /** @internal */
  readonly _client: Client<any>;
  readonly name: string;

  /** Use client.stream(name). */
  constructor(client: Client<any>, name: string) {
    this._client = client;
    this.name = name;
  }

  /** Creates an object: 201 and the object as the server stored it. */
  create(data: Partial<T>, opts: WriteOptions = {}): Promise<WriteReply<T>> {
    return this.write<T>("create", undefined, data, opts);
  }

  /** The object with that pk; a WsbindError 404 when it does not exist or is not yours to see. */
  async retrieve(pk: Pk, opts: RequestOptions = {}): Promise<Reply<T>> {
    const payload = { action: "retrieve", pk };
    const reply = await this._client._request(this.name, payload, { timeoutMs: opts.timeoutMs, resend: true });
    return toReply<T>(reply, String(pk), null) as Reply<T>;
  }

  /** Replaces the object's fields: every required field must be given. */
  update(pk: Pk, data: Partial<T>, opts: VersionedWriteOptions = {}): Promise<WriteReply<T>> {
    return this.write<T>("update", pk, data, opts);
  }

  /** Changes only the fields given. */
  patch(pk: Pk, data: Partial<T>, opts: VersionedWriteOptions = {}): Promise<WriteReply<T>> {
    return this.write<T>("patch", pk, data, opts);
  }

  /** Deletes the object; the reply's version is the one after its last. */
  delete(pk: Pk, opts: VersionedWriteOptions = {}): Promise<WriteReply<Record<string, never>>> {
    return this.write<Record<string, never>>("delete", pk, undefined, opts);
  }

  /**
   * One page of objects, in pk order: page 1 unless told, or the page after a
   * pk (`after`). Past the last page number: WsbindError 404 "Invalid page.";
   * past the last pk: an empty page.
   */
  async list(opts: ListOptions = {}): Promise<Page<T>> {
    const page = opts.page ?? 1;
    const payload: Record<string, unknown> = { action: "list" };
    const data: Record<string, unknown> = {};
    if (opts.page !== undefined) data["page"] = page;
    if (opts.after !== undefined) data["after"] = opts.after;
    if (Object.keys(data).length > 0) payload["data"] = data;
    const reply = await this._client._request(this.name, payload, { timeoutMs: opts.timeoutMs, resend: true });
    const items = Array.isArray(reply.data) ? (reply.data as unknown[]) : [];
    const objects: T[] = [];
    const truncatedPks: string[] = [];
    let lastPk: string | null = null;
    for (const item of items) {
      const obj = item as { id?: unknown; truncated?: unknown } | null;
      lastPk = obj !== null && typeof obj === "object" && obj.id !== undefined && obj.id !== null ? String(obj.id) : null;
      if (obj !== null && typeof obj === "object" && obj.truncated === true) truncatedPks.push(String(obj.id));
      else objects.push(item as T);
    }
    return {
      ...meta(reply, null, null),
      data: objects,
      truncatedPks,
      cursor: typeof reply.cursor === "string" ? reply.cursor : null,
      page,
      lastPk,
    };
  }

  /**
   * Every page, each after the last pk of the one before, until one is empty
   * or shorter than the first. The cursor is the first page's. By page number,
   * an object deleted from an earlier page while the pages are read would shift
   * a later one past the page that should hold it; a page after a pk does not
   * move. A server that ignores `after` (one older than it) sends the first page
   * again, or a 404 "Invalid page.": listAll then reads the pages by number.
   */
  async listAll(opts: RequestOptions = {}): Promise<Listing<T>> {
    const out: Listing<T> = { data: [], truncatedPks: [], cursor: null, pages: 0 };
    let size = 0;
    let after: string | undefined;
    for (let page = 1; ; page++) {
      let p: Page<T>;
      try {
        p = await this.list({ ...opts, after });
      } catch (e) {
        // A server that knows page numbers only may take a page after a pk for a page past the last.
        if (after !== undefined && e instanceof WsbindError && e.status === 404 && Array.isArray(e.errors) && e.errors.includes("Invalid page.")) {
          return this.listPages(opts);
        }
        throw e;
      }
      const n = p.data.length + p.truncatedPks.length;
      if (after !== undefined && n > 0 && !startsAfter(p, after)) {
        return this.listPages(opts); // not the page after: the server ignored after
      }
      out.pages = page;
      if (page === 1) {
        out.cursor = p.cursor;
        size = n;
      }
      out.data.push(...p.data);
      out.truncatedPks.push(...p.truncatedPks);
      if (n === 0 || n < size) break;
      if (p.lastPk === null) throw new Error(`wsbind: ${this.name} list page ${page}: its last object has no id to list after`);
      after = p.lastPk;
    }
    return out;
  }

  /** Every page by number, until one is empty, shorter than the first, or past the last. */
  private async listPages(opts: RequestOptions): Promise<Listing<T>> {
    const out: Listing<T> = { data: [], truncatedPks: [], cursor: null, pages: 0 };
    let size = 0;
    for (let page = 1; ; page++) {
      let p: Page<T>;
      try {
        p = await this.list({ ...opts, page });
      } catch (e) {
        if (page > 1 && e instanceof WsbindError && e.status === 404) break;
        throw e;
      }
      out.pages = page;
      if (page === 1) out.cursor = p.cursor;
      out.data.push(...p.data);
      out.truncatedPks.push(...p.truncatedPks);
      const n = p.data.length + p.truncatedPks.length;
      if (page === 1) size = n;
      if (n === 0 || n < size) break;
    }
    return out;
  }

  /**
   * A custom action: a detail action with `pk`, a list action without. It
   * may write, so it carries an idempotency key and is resent after a drop
   * like every write.
   */
  action<R = unknown>(name: string, opts: ActionOptions = {}): Promise<WriteReply<R>> {
    return this.write<R>(name, opts.pk, opts.data, opts);
  }

  /**
   * Follows changes: an async iterable of events that also calls onEvent.
   * Resubscribes after every reconnect, from the last cursor seen.
   */
  subscribe(opts: SubscribeOptions<T>): Subscription<T> {
    return new Subscription<T>(this._client, this.name, opts);
  }

  /** Every object (matching the filter), kept up to date: see snapshot(). */
  snapshot(opts: SnapshotOptions<T> = {}): Promise<Snapshot<T>> {
    return snapshot(this, opts);
  }

  private async write<D>(action: string, pk: Pk | undefined, data: unknown, opts: VersionedWriteOptions): Promise<WriteReply<D>> {
    const key = opts.idempotencyKey ?? newKey();
    const payload: Record<string, unknown> = { action, idempotency_key: key };
    if (pk !== undefined) payload["pk"] = pk;
    if (data !== undefined) payload["data"] = data;
    if (opts.ifVersion !== undefined) payload["if_version"] = opts.ifVersion;
    const reply = await this._client._request(this.name, payload, { timeoutMs: opts.timeoutMs, resend: true });
    return toReply<D>(reply, pk === undefined ? null : String(pk), key);
  }
}

/** Whether every entry of page p (in pk order: its first object, or its first truncated pk) sorts after pk. */
function startsAfter(p: Page<object>, pk: string): boolean {
  const first = p.data[0] as { id?: unknown } | undefined;
  if (first !== undefined && (first.id === undefined || first.id === null || comparePks(String(first.id), pk) <= 0)) return false;
  const truncated = p.truncatedPks[0];
  return truncated === undefined || comparePks(truncated, pk) > 0;
}

/**
 * Orders pks as the server does: by their UTF-8 bytes, which is code point
 * order (JavaScript's < compares UTF-16 units, which puts U+10000 and up before
 * U+E000 to U+FFFF).
 */
export function comparePks(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(j)!;
    if (x !== y) return x < y ? -1 : 1;
    i += x > 0xffff ? 2 : 1;
    j += y > 0xffff ? 2 : 1;
  }
  return (i < a.length ? 1 : 0) - (j < b.length ? 1 : 0);
}

function meta(reply: WirePayload, pk: string | null, key: string | null) {
  const rid = reply.request_id;
  return {
    status: reply.response_status as number,
    version: typeof reply.version === "number" ? reply.version : null,
    pk,
    requestId: typeof rid === "string" ? rid : String(rid),
    idempotencyKey: key,
  };
}

function toReply<D>(reply: WirePayload, requestPk: string | null, key: string | null): WriteReply<D> {
  let pk = requestPk;
  if (typeof reply.pk === "string" || typeof reply.pk === "number") pk = String(reply.pk);
  else if (pk === null) {
    const id = (reply.data as { id?: unknown } | null)?.id;
    if (typeof id === "string" || typeof id === "number") pk = String(id);
  }
  const m = meta(reply, pk, key);
  if (reply.truncated === true) return { ...m, pk: pk ?? "", data: null, truncated: true };
  return { ...m, data: (reply.data ?? null) as D, truncated: false };
}
