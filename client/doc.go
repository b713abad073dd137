// Package client is the Go client of a wsbind API: requests matched to
// their replies, subscriptions that survive reconnects, and snapshots
// kept current, over one WebSocket that the client keeps open.
//
// The wire it speaks is docs/protocol.md. A session looks like this:
//
//	c, err := client.Dial(ctx, "wss://api.example.com/prod", client.Options{
//		Token: func(ctx context.Context) (string, error) { return tokens.Fresh(ctx) },
//	})
//	if err != nil { ... }
//	defer c.Close()
//
//	questions := c.Stream("questions")
//	r, err := questions.Create(ctx, map[string]any{"question_text": "Why?"})
//	var e *client.Error
//	if errors.As(err, &e) && e.Status == 400 { ... e.Fields["question_text"] ... }
//
//	sub, err := questions.Subscribe(ctx, client.Sub{Action: "update", PK: r.PK})
//	for ev := range sub.Events() {
//		if ev.Gap { ... list again ... }
//		...
//	}
//
// # Connection
//
// Dial opens the first connection and fails if it cannot. From then on
// the client reconnects by itself whenever the connection ends (API
// Gateway ends every connection after 2 hours, and after 10 minutes
// without traffic), after a random wait that grows with each failed
// attempt ("full jitter"), asking Options.Token for a token each time.
// A reply of 401 "Token expired" also makes it reconnect, with a new
// token, and send the request again. Options.OnState reports Connected
// (every subscription made again), Reconnecting and Closed.
//
// # Requests
//
// Each request carries a unique request_id and waits for its reply up
// to Options.Timeout (or its context's deadline). Every write carries an
// idempotency_key, random unless given with IdempotencyKey; when the
// connection ends before a reply, the client sends the request again,
// with the same key, on the next connection, and the server answers a
// repeat with the first reply instead of running it twice. Reads are
// repeated as they are. A call returns:
//
//   - a *Result: the reply's data (decode it with Decode), the object's
//     PK and Version, a list's Cursor;
//   - an *Error: the server refused (Status, and Messages or Fields as
//     Django REST framework gives them);
//   - ErrTimeout: no reply on a working connection in time;
//   - ErrConnectionLost: no connection to send it on in time;
//   - ErrClosed, ErrTooLarge.
//
// # Subscriptions
//
// A Subscription delivers the pushes of one Sub (an action, optionally
// a pk and a filter) as Events. After a reconnect the client makes every
// subscription again with Since set to the cursor of the last push it
// delivered, so that the server replays what happened meanwhile (Replay
// events); it drops a push whose version of its object the
// subscription has already delivered, or a later one (Duplicates counts
// them), so the application sees each change at most once. When the
// server cannot replay (a cursor older than its history, or a server
// without cursors), the subscription delivers an Event with Gap set: the
// application lists again.
//
// # Snapshots
//
// Stream.Snapshot lists every page of a stream and keeps the result
// current with create, update and delete subscriptions resumed from the
// first page's cursor: a map of pk to object with its version, which
// lists again by itself after a gap.
package client
