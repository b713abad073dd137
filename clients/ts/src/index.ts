export { Client, connect } from "./client.js";
export type {
  Backoff,
  ClientStats,
  ConnectOptions,
  ConnectionState,
  StateInfo,
  StreamMap,
  StreamTypes,
  TokenProvider,
} from "./client.js";
export { ConnectionError, TimeoutError, WsbindError } from "./errors.js";
export type { ErrorDetail, RequestInfo } from "./errors.js";
export type { Filter } from "./filter.js";
export { Snapshot, snapshot } from "./snapshot.js";
export type { SnapshotOptions } from "./snapshot.js";
export type { WebSocketConstructor, WebSocketLike } from "./socket.js";
export { Stream } from "./stream.js";
export { Subscription } from "./subscription.js";
export type { SubscribeOptions } from "./subscription.js";
export type {
  ActionOptions,
  ChangeAction,
  ChangeEvent,
  GapEvent,
  ListOptions,
  Listing,
  Page,
  Pk,
  Reply,
  ReplyMeta,
  RequestOptions,
  SubscriptionEvent,
  TruncatedChangeEvent,
  TruncatedReply,
  VersionedWriteOptions,
  WriteOptions,
  WriteReply,
} from "./types.js";
