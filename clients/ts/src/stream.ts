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

  /** One page of objects, in pk order (page 1 unless told). Past the last page: WsbindError 404 "Invalid page.". */
  async list(opts: ListOptions = {}): Promise<Page<T>> {
    const page = opts.page ?? 1;
    const payload: Record<string, unknown> = { action: "list" };
    if (opts.page !== undefined) payload["data"] = { page };
    const reply = await this._client._request(this.name, payload, { timeoutMs: opts.timeoutMs, resend: true });
    const items = Array.isArray(reply.data) ? (reply.data as unknown[]) : [];
    const data: T[] = [];
    const truncatedPks: string[] = [];
    for (const item of items) {
      const obj = item as { id?: unknown; truncated?: unknown } | null;
      if (obj !== null && typeof obj === "object" && obj.truncated === true) truncatedPks.push(String(obj.id));
      else data.push(item as T);
    }
    return {
      ...meta(reply, null, null),
      data,
      truncatedPks,
      cursor: typeof reply.cursor === "string" ? reply.cursor : null,
      page,
    };
  }

  /**
   * Every page, from the first until one is empty, shorter than the first, or
   * past the last. The cursor is the first page's.
   */
  async listAll(opts: RequestOptions = {}): Promise<Listing<T>> {
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
