// Package host runs the guests: it holds the world-facing services (store,
// subscriptions, connections, posting, logs, clock), implements the ABI's
// host functions over them, and runs guest instances through an engine —
// wazero by default, or the native engine that links the guest code into
// the host for baselines and tests.
package host

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/sandbox/abi"
)

// Poster delivers pushes.
type Poster interface {
	// Post sends frame to every connection. Connections that are gone are
	// cleaned up and not an error; an error means some delivery may not
	// have happened and the change should be retried.
	Post(ctx context.Context, frame []byte, connIDs []string) error
}

// GoneReporter is implemented by a Poster that knows which connections
// API Gateway answered 410 Gone for.
type GoneReporter interface {
	Gone(connID string) bool
}

// Flusher is implemented by a Poster that delivers some pushes in the
// background (retries that would otherwise hold up the other
// connections). The fan-out calls Flush once per batch, after its last
// record, to give them a short while to land before the invocation ends;
// Flush returns when they have, or after its own bound, or when ctx ends.
type Flusher interface {
	Flush(ctx context.Context) error
}

// PushCounts are a Poster's cumulative outcomes of PostToConnection
// attempts since it was made: Posted delivered, Gone answered 410,
// Throttled answered 429 (or another throttling code; retried), Failed
// any other failure (5xx, 403, 413, network, cancelled). Every attempt
// counts once, so their sum is the requests made.
type PushCounts struct {
	Posted, Gone, Throttled, Failed int64
}

// Sub returns the counts made since earlier: one invocation's share.
func (c PushCounts) Sub(earlier PushCounts) PushCounts {
	return PushCounts{Posted: c.Posted - earlier.Posted, Gone: c.Gone - earlier.Gone,
		Throttled: c.Throttled - earlier.Throttled, Failed: c.Failed - earlier.Failed}
}

// PushCounter is implemented by a Poster that counts its attempts'
// outcomes, for the fan-out's metrics.
type PushCounter interface {
	PushCounts() PushCounts
}

// Services are what the host functions reach. Store, Subscribers, Conns
// and Poster are required by the functions that use them; Now and Log
// default to time.Now and slog.Default().
type Services struct {
	Store       store.Store
	Subscribers store.Subscribers
	Conns       store.Connections
	Poster      Poster
	Now         func() time.Time
	Log         *slog.Logger
}

func (s *Services) now() int64 {
	if s.Now != nil {
		return s.Now().UnixNano()
	}
	return time.Now().UnixNano()
}

func (s *Services) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// errMissing reports a service the call needs but the host was not given.
var errMissing = errors.New("host: service not configured")

// Dispatch runs one host function: it decodes the request, calls the
// service, and encodes the result. Every engine routes its imports here,
// so the ABI's host side is written once.
func (s *Services) Dispatch(ctx context.Context, fn abi.Func, req []byte) (abi.Status, []byte) {
	r := abi.NewReader(req)
	var w abi.Writer
	var err error
	switch fn {
	case abi.FuncStoreGet:
		p, id := r.Part(), r.String()
		if err = r.Done(); err != nil {
			break
		}
		var it store.Item
		if it, err = s.store().Get(ctx, p, id); err == nil {
			w.Item(it)
		}
	case abi.FuncStoreCreate:
		p, it := r.Part(), r.Item()
		if err = r.Done(); err == nil {
			err = s.store().Create(ctx, p, it)
		}
	case abi.FuncStoreReplace:
		p, it := r.Part(), r.Item()
		if err = r.Done(); err != nil {
			break
		}
		var v int64
		if v, err = s.store().Replace(ctx, p, it); err == nil {
			w.U64(uint64(v))
		}
	case abi.FuncStoreDelete:
		p, id, version := r.Part(), r.String(), r.U64()
		if err = r.Done(); err != nil {
			break
		}
		var it store.Item
		// abi.AnyVersion reads back as store.AnyVersion.
		if it, err = s.store().Delete(ctx, p, id, int64(version)); err == nil {
			w.Item(it)
		}
	case abi.FuncStoreList:
		p, after, offset, limit := r.Part(), r.String(), r.U64(), r.U64()
		if err = r.Done(); err != nil {
			break
		}
		var items []store.Item
		if items, err = s.store().List(ctx, p, after, int(min(offset, 1<<40)), int(min(limit, 1<<20))); err == nil {
			w.U64(uint64(len(items)))
			for _, it := range items {
				w.Item(it)
			}
		}
	case abi.FuncStoreCount:
		p := r.Part()
		if err = r.Done(); err != nil {
			break
		}
		var n int
		if n, err = s.store().Count(ctx, p); err == nil {
			w.U64(uint64(n))
		}
	case abi.FuncSubscribe:
		sub := r.Subscription()
		if err = r.Done(); err == nil {
			err = s.store().Subscribe(ctx, sub)
		}
	case abi.FuncUnsubscribe:
		sub := r.Subscription()
		if err = r.Done(); err == nil {
			err = s.store().Unsubscribe(ctx, sub)
		}
	case abi.FuncClaim:
		key, c, now := r.String(), r.Claim(), r.U64()
		if err = r.Done(); err != nil {
			break
		}
		if c, err = s.store().Claim(ctx, key, c, time.UnixMilli(int64(now))); err == nil {
			w.Claim(c)
		}
	case abi.FuncSettle:
		key := r.String()
		var reply []byte
		if r.Bool() {
			if reply = r.Bytes(); reply == nil {
				reply = []byte{}
			}
		}
		if err = r.Done(); err == nil {
			err = s.store().Settle(ctx, key, reply)
		}
	case abi.FuncHistory:
		p, from, limit := r.Part(), r.U64(), r.U64()
		if err = r.Done(); err != nil {
			break
		}
		var chs []store.Change
		if chs, err = s.store().Since(ctx, p, int64(min(from, 1<<62)), int(min(limit, 1<<20))); err == nil {
			w.U64(uint64(len(chs)))
			for i := range chs {
				c := abi.Change(chs[i])
				c.Encode(&w)
			}
		}
	case abi.FuncSubscribers:
		n := r.U64()
		if n > uint64(len(req)) { // each topic takes at least 4 bytes
			err = abi.ErrShort
			break
		}
		topics := make([]string, 0, n)
		for range n {
			topics = append(topics, r.String())
		}
		if err = r.Done(); err != nil {
			break
		}
		if s.Subscribers == nil {
			err = errMissing
			break
		}
		var subs []store.Subscription
		if subs, err = s.Subscribers.Subscribers(ctx, topics); err == nil {
			// Size the result once: thousands of subscriptions would
			// otherwise grow it a dozen times.
			size := 8
			for _, sub := range subs {
				size += 4*5 + 8*2 + len(sub.Topic) + len(sub.ConnID) + len(sub.Filter) + len(sub.User.ID)
				for _, role := range sub.User.Roles {
					size += 4 + len(role)
				}
				for k, v := range sub.User.Claims {
					size += 8 + len(k) + len(v)
				}
			}
			w.B = make([]byte, 0, size)
			w.U64(uint64(len(subs)))
			for _, sub := range subs {
				w.Subscription(sub)
			}
		}
	case abi.FuncPost:
		frame, n := r.Bytes(), r.U64()
		if n > uint64(len(req)) {
			err = abi.ErrShort
			break
		}
		ids := make([]string, 0, n)
		for range n {
			ids = append(ids, r.String())
		}
		if err = r.Done(); err != nil {
			break
		}
		if s.Poster == nil {
			err = errMissing
			break
		}
		if err = s.Poster.Post(ctx, frame, ids); err == nil {
			// The connections found gone, so that a guest posting many
			// frames to one (a replay) can stop.
			if g, ok := s.Poster.(GoneReporter); ok {
				var gone []string
				for _, id := range ids {
					if g.Gone(id) {
						gone = append(gone, id)
					}
				}
				w.U64(uint64(len(gone)))
				for _, id := range gone {
					w.String(id)
				}
			}
		}
	case abi.FuncLog:
		level, msg := r.U64(), r.String()
		if err = r.Done(); err != nil {
			break
		}
		if level == abi.LevelError {
			s.log().Error(msg)
		} else {
			s.log().Info(msg)
		}
	case abi.FuncConnPut:
		var e abi.ConnEvent
		if err = e.Decode(r); err != nil {
			break
		}
		if s.Conns == nil {
			err = errMissing
			break
		}
		err = s.Conns.PutConn(ctx, store.Conn{ConnID: e.ConnID, User: e.User, At: e.At})
	case abi.FuncConnDrop:
		id := r.String()
		if err = r.Done(); err != nil {
			break
		}
		if s.Conns == nil {
			err = errMissing
			break
		}
		err = s.Conns.DropConn(ctx, id)
	default:
		return abi.BadCall, []byte("unknown host function")
	}
	switch {
	case err == nil:
		return abi.OK, w.B
	case errors.Is(err, abi.ErrShort) || r.Err() != nil:
		return abi.BadCall, []byte(err.Error())
	case errors.Is(err, store.ErrNotFound):
		return abi.NotFound, nil
	case errors.Is(err, store.ErrExists):
		return abi.Exists, nil
	case errors.Is(err, store.ErrConflict):
		return abi.Conflict, nil
	}
	return abi.Failed, []byte(err.Error())
}

func (s *Services) store() store.Store {
	if s.Store == nil {
		return missingStore{}
	}
	return s.Store
}

// missingStore answers every call with errMissing.
type missingStore struct{}

func (missingStore) Get(context.Context, store.Part, string) (store.Item, error) {
	return store.Item{}, errMissing
}
func (missingStore) Create(context.Context, store.Part, store.Item) error { return errMissing }
func (missingStore) Replace(context.Context, store.Part, store.Item) (int64, error) {
	return 0, errMissing
}
func (missingStore) Delete(context.Context, store.Part, string, int64) (store.Item, error) {
	return store.Item{}, errMissing
}
func (missingStore) List(context.Context, store.Part, string, int, int) ([]store.Item, error) {
	return nil, errMissing
}
func (missingStore) Count(context.Context, store.Part) (int, error)        { return 0, errMissing }
func (missingStore) Subscribe(context.Context, store.Subscription) error   { return errMissing }
func (missingStore) Unsubscribe(context.Context, store.Subscription) error { return errMissing }
func (missingStore) Claim(context.Context, string, store.Claim, time.Time) (store.Claim, error) {
	return store.Claim{}, errMissing
}
func (missingStore) Settle(context.Context, string, []byte) error { return errMissing }
func (missingStore) Since(context.Context, store.Part, int64, int) ([]store.Change, error) {
	return nil, errMissing
}
