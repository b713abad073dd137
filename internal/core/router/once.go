package router

import (
	"bytes"
	"context"
	"strconv"
	"time"

	"github.com/wsbind/wsbind/internal/core/apierr"
	"github.com/wsbind/wsbind/internal/core/call"
	"github.com/wsbind/wsbind/internal/core/protocol"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/resource"
)

// Idempotency keys (docs/protocol.md, "Idempotent writes").
const (
	// KeyLifetime is how long a key answers its first reply.
	KeyLifetime = 24 * time.Hour
	// KeyLease is how long a key stays taken by a request that has not
	// stored its reply: past it the request must have died (API Gateway
	// gives up on an integration after 29 s), and a repeat runs afresh.
	KeyLease = time.Minute
)

// writes reports whether an action of h is a write, which an idempotency
// key applies to: create, update, patch, delete and every custom action.
// Reads and subscriptions are idempotent already; their keys are ignored.
func writes(h *resource.Handler, action string) bool {
	switch action {
	case "create", "update", "patch", "delete":
		return true
	case "retrieve", "list", "subscribe", "unsubscribe":
		return false
	}
	for _, a := range h.Actions() {
		if a.Name == action {
			return a.Custom
		}
	}
	return false
}

// keyOf is the stored key of an idempotency key: the user's, or for an
// anonymous caller the connection's. Lengths keep any two callers apart
// whatever their ids hold.
func keyOf(conn Conn, key string) string {
	who, id := "u", conn.User.ID
	if id == "" {
		who, id = "c", conn.ID
	}
	return who + strconv.Itoa(len(id)) + ":" + id + ":" + key
}

// placeholder stands for the request_id while a reply is written to be
// stored: as long as the longest request_id echoed, so that the reply,
// truncation and all, fits in a message whatever request_id a repeat
// carries.
var placeholder = append(append([]byte{'"'}, bytes.Repeat([]byte{'-'}, protocol.MaxEcho-2)...), '"')

// storedTail ends a stored reply: its request_id is null.
const storedTail = `null}}`

// once serves a write that carries an idempotency key: the first request
// claims the key (one conditional write), runs, and stores its reply; a
// repeat within KeyLifetime gets that reply with its own request_id and
// runs nothing. A reply of 500 is not stored: the write did not happen
// (or cannot be told apart from one that did not), and the key is freed
// for a retry.
func (r *Router) once(ctx context.Context, h *resource.Handler, conn Conn, req *protocol.Request) []byte {
	now := r.now()
	if expired(conn.User, now) {
		return reply(req, call.Result{}, apierr.TokenExpired())
	}
	key := keyOf(conn, req.IdempotencyKey)
	c, err := r.store.Claim(ctx, key, store.Claim{
		Stream: req.Stream, Action: req.Action,
		Lease: now.Add(KeyLease), Expires: now.Add(KeyLifetime),
	}, now)
	if err != nil {
		return reply(req, call.Result{}, r.publicError(apierr.Internal(err), req, conn))
	}
	if !c.Fresh {
		switch {
		case c.Stream != req.Stream || c.Action != req.Action:
			return reply(req, call.Result{}, apierr.InvalidFields(apierr.FieldError{Field: "idempotency_key",
				Messages: []string{"This key was used for " + c.Action + " on " + c.Stream + "."}}))
		case c.Reply == nil || !bytes.HasSuffix(c.Reply, []byte(storedTail)):
			return reply(req, call.Result{}, apierr.Conflict("A request with this idempotency_key is in progress; try again."))
		}
		return withRequestID(c.Reply[:len(c.Reply)-len(storedTail)], req.RequestID)
	}
	res, serr := r.serve(ctx, h, conn, req)
	perr := r.publicError(serr, req, conn)
	held := *req
	held.RequestID = placeholder
	full := reply(&held, res, perr)
	base := full[:len(full)-len(placeholder)-len("}}")]
	if perr != nil && perr.Code() == apierr.CodeInternal {
		err = r.store.Settle(ctx, key, nil)
	} else {
		err = r.store.Settle(ctx, key, append(bytes.Clone(base), storedTail...))
	}
	if err != nil {
		// The reply stands: the write is done or not, whatever became of
		// the key; a repeat finds the key in progress until its lease ends.
		r.log.Error("wsbind: idempotency key not settled", "stream", req.Stream, "action", req.Action, "conn", conn.ID, "err", err.Error())
	}
	return withRequestID(base, req.RequestID)
}

// withRequestID ends a reply whose request_id is still to be written.
func withRequestID(base, id []byte) []byte {
	out := make([]byte, 0, len(base)+len(id)+6)
	out = append(out, base...)
	if id == nil {
		out = append(out, "null"...)
	} else {
		out = append(out, id...)
	}
	return append(out, "}}"...)
}
