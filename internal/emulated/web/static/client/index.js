export { Client, connect } from "./client.js";
export { ConnectionError, TimeoutError, WsbindError } from "./errors.js";
export { Snapshot, snapshot } from "./snapshot.js";
export { Stream } from "./stream.js";
export { Subscription } from "./subscription.js";
