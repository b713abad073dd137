// Public types of requests and replies, and the wire's payload as parsed.

/** An object id. `7` and `"7"` name the same object; replies and pushes give it as a string. */
export type Pk = string | number;

/** The kinds of change a subscription follows and a push reports. */
export type ChangeAction = "create" | "update" | "delete";

export interface RequestOptions {
  /** Milliseconds to wait for the reply, across reconnects; the client's timeoutMs by default. */
  timeoutMs?: number;
}

export interface WriteOptions extends RequestOptions {
  /**
   * The write's idempotency key (1 to 128 characters). One is generated when
   * absent. Pass the key of a write that failed with a ConnectionError to
   * retry it without running it twice.
   */
  idempotencyKey?: string;
}

export interface VersionedWriteOptions extends WriteOptions {
  /** The version the object must be at, or the write fails with 409 and changes nothing. */
  ifVersion?: number;
}

export interface ActionOptions extends VersionedWriteOptions {
  /** The object of a detail action; absent for a list action. */
  pk?: Pk;
  /** The action's input. */
  data?: unknown;
}

export interface ListOptions extends RequestOptions {
  /** The page, from 1 (the default). */
  page?: number;
  /**
   * The pk the page starts after: the page of the objects whose pks sort after
   * it (protocol §3). Give it the previous page's lastPk: unlike a page number,
   * it goes on from there whatever was deleted or created before it. Past the
   * last object the page is empty.
   */
  after?: string;
}

/** What every successful reply carries besides its data. */
export interface ReplyMeta {
  /** The response_status: 200, or 201 for a create. */
  status: number;
  /** The object's version after the request, when the reply has one. */
  version: number | null;
  /** The object's pk: the reply's own, the request's, or the data's `id`. */
  pk: string | null;
  requestId: string;
  /** The idempotency key the request was sent with (writes only). */
  idempotencyKey: string | null;
}

export interface Reply<D> extends ReplyMeta {
  data: D;
  truncated: false;
}

/**
 * A committed write whose reply would not fit in one message (over 128 KB):
 * it carries no data, only the pk and version of what was written.
 */
export interface TruncatedReply extends ReplyMeta {
  data: null;
  truncated: true;
  pk: string;
}

/** The reply to a write: the object, or, when too large for a message, its pk and version. */
export type WriteReply<D> = Reply<D> | TruncatedReply;

/** One page of a list. */
export interface Page<T> extends ReplyMeta {
  /** The page's objects, in pk order, without those too large to send (see truncatedPks). */
  data: T[];
  /** The pks of objects the server left out of the page because it would not fit in a message. */
  truncatedPks: string[];
  /** The position the page was read at (servers with resumable subscriptions), else null. */
  cursor: string | null;
  page: number;
  /** The pk of the page's last entry (an object or a truncated one), to list the page after it; null for an empty page. */
  lastPk: string | null;
}

/** Every page of a list, read in turn. */
export interface Listing<T> {
  data: T[];
  truncatedPks: string[];
  /** The first page's cursor: the earliest position of the listing. */
  cursor: string | null;
  pages: number;
}

interface PushBase {
  gap: false;
  stream: string;
  action: ChangeAction;
  pk: string;
  /** The object's version after the change (for a delete, its last version + 1); null if it has none. */
  version: number | null;
  /** The change's position, for resuming; null from servers without resumable subscriptions. */
  cursor: string | null;
  /** True for a change replayed because the subscription resumed from a cursor. */
  replay: boolean;
  model: string | null;
}

/** A change: the object after it (for a delete, as it was). */
export interface ChangeEvent<T> extends PushBase {
  truncated: false;
  data: T;
}

/** A change whose object was too large to push: retrieve it if you need it. */
export interface TruncatedChangeEvent extends PushBase {
  truncated: true;
  data: null;
}

/**
 * Changes may have been missed: list again. `reason` says why: the server
 * could not replay from the subscription's cursor ("server"), or the client
 * resubscribed after a reconnect without a cursor to resume from ("reconnect").
 */
export interface GapEvent {
  gap: true;
  reason: "server" | "reconnect";
  stream: string;
  action: ChangeAction;
  pk: string | null;
  version: null;
  data: null;
  cursor: null;
  replay: false;
  model: null;
  truncated: false;
}

export type SubscriptionEvent<T> = ChangeEvent<T> | TruncatedChangeEvent | GapEvent;

/** A frame's payload as it arrives; every field is checked before use. */
export interface WirePayload {
  action?: unknown;
  data?: unknown;
  errors?: unknown;
  response_status?: unknown;
  request_id?: unknown;
  pk?: unknown;
  version?: unknown;
  cursor?: unknown;
  replay?: unknown;
  gap?: unknown;
  model?: unknown;
  truncated?: unknown;
}
