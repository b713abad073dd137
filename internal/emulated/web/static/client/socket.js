// The part of the WebSocket API the client uses. The browser's WebSocket and
// the `ws` package's both fit it, so either can be passed as
// ConnectOptions.WebSocket.
/** WebSocket.OPEN, the same in every implementation. */
export const OPEN = 1;
