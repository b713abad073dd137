// Package guest is the guest side of the ABI: a store.Store and the
// fan-out's subscriptions over host calls, and the three functions' entry
// points (route, streamfanout, connect) as plain Go functions of bytes.
// The wasm mains under functions/ export them; the host's native engine
// calls the very same functions in-process, which is how every WASI figure
// gets its native baseline.
package guest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/wsbind/wsbind/internal/core/apierr"
	"github.com/wsbind/wsbind/internal/core/protocol"
	"github.com/wsbind/wsbind/internal/core/router"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/resource"
)

// Caller makes host calls. In a wasm guest it is Imports; the host's native
// engine implements it directly.
type Caller interface {
	// Call runs a host function with an encoded request and returns its
	// status and encoded result.
	Call(fn abi.Func, req []byte) (abi.Status, []byte)
	// Now is FuncNow: the host's clock in Unix nanoseconds.
	Now() int64
}

// Entry is one exported entry point: input bytes to output bytes.
type Entry func(in []byte) []byte

// Store is store.Store and store.Subscribers over host calls.
type Store struct{ c Caller }

var (
	_ store.Store       = (*Store)(nil)
	_ store.Subscribers = (*Store)(nil)
)

// NewStore returns a store that calls c.
func NewStore(c Caller) *Store { return &Store{c: c} }

// call runs fn and turns its status into the store's errors.
func (s *Store) call(fn abi.Func, w *abi.Writer) ([]byte, error) {
	st, res := s.c.Call(fn, w.B)
	switch st {
	case abi.OK:
		return res, nil
	case abi.NotFound:
		return nil, store.ErrNotFound
	case abi.Exists:
		return nil, store.ErrExists
	case abi.Conflict:
		return nil, store.ErrConflict
	}
	return nil, errors.New(fn.String() + ": status " + strconv.Itoa(int(st)) + ": " + string(res))
}

// Get implements store.Store with FuncStoreGet.
func (s *Store) Get(_ context.Context, p store.Part, id string) (store.Item, error) {
	var w abi.Writer
	w.Part(p)
	w.String(id)
	res, err := s.call(abi.FuncStoreGet, &w)
	if err != nil {
		return store.Item{}, err
	}
	r := abi.NewReader(res)
	it := r.Item()
	return it, r.Done()
}

// Create implements store.Store with FuncStoreCreate.
func (s *Store) Create(_ context.Context, p store.Part, it store.Item) error {
	var w abi.Writer
	w.Part(p)
	w.Item(it)
	_, err := s.call(abi.FuncStoreCreate, &w)
	return err
}

// Replace implements store.Store with FuncStoreReplace.
func (s *Store) Replace(_ context.Context, p store.Part, it store.Item) (int64, error) {
	var w abi.Writer
	w.Part(p)
	w.Item(it)
	res, err := s.call(abi.FuncStoreReplace, &w)
	if err != nil {
		return 0, err
	}
	r := abi.NewReader(res)
	v := int64(r.U64())
	return v, r.Done()
}

// Delete implements store.Store with FuncStoreDelete. The version
// travels as a U64: store.AnyVersion becomes abi.AnyVersion.
func (s *Store) Delete(_ context.Context, p store.Part, id string, version int64) (store.Item, error) {
	var w abi.Writer
	w.Part(p)
	w.String(id)
	w.U64(uint64(version))
	res, err := s.call(abi.FuncStoreDelete, &w)
	if err != nil {
		return store.Item{}, err
	}
	r := abi.NewReader(res)
	it := r.Item()
	return it, r.Done()
}

// List implements store.Store with FuncStoreList.
func (s *Store) List(_ context.Context, p store.Part, after string, offset, limit int) ([]store.Item, error) {
	var w abi.Writer
	w.Part(p)
	w.String(after)
	w.U64(uint64(offset))
	w.U64(uint64(limit))
	res, err := s.call(abi.FuncStoreList, &w)
	if err != nil {
		return nil, err
	}
	r := abi.NewReader(res)
	n := r.U64()
	if n > uint64(len(res)) {
		return nil, abi.ErrShort
	}
	items := make([]store.Item, 0, n)
	for range n {
		items = append(items, r.Item())
	}
	return items, r.Done()
}

// Count implements store.Store with FuncStoreCount.
func (s *Store) Count(_ context.Context, p store.Part) (int, error) {
	var w abi.Writer
	w.Part(p)
	res, err := s.call(abi.FuncStoreCount, &w)
	if err != nil {
		return 0, err
	}
	r := abi.NewReader(res)
	n := r.U64()
	return int(n), r.Done()
}

// Subscribe implements store.Store with FuncSubscribe.
func (s *Store) Subscribe(_ context.Context, sub store.Subscription) error {
	var w abi.Writer
	w.Subscription(sub)
	_, err := s.call(abi.FuncSubscribe, &w)
	return err
}

// Unsubscribe implements store.Store with FuncUnsubscribe.
func (s *Store) Unsubscribe(_ context.Context, sub store.Subscription) error {
	var w abi.Writer
	w.Subscription(sub)
	_, err := s.call(abi.FuncUnsubscribe, &w)
	return err
}

// Claim implements store.Store with FuncClaim.
func (s *Store) Claim(_ context.Context, key string, c store.Claim, now time.Time) (store.Claim, error) {
	var w abi.Writer
	w.String(key)
	w.Claim(c)
	w.U64(uint64(now.UnixMilli()))
	res, err := s.call(abi.FuncClaim, &w)
	if err != nil {
		return store.Claim{}, err
	}
	r := abi.NewReader(res)
	got := r.Claim()
	return got, r.Done()
}

// Settle implements store.Store with FuncSettle.
func (s *Store) Settle(_ context.Context, key string, reply []byte) error {
	var w abi.Writer
	w.String(key)
	w.Bool(reply != nil)
	if reply != nil {
		w.Bytes(reply)
	}
	_, err := s.call(abi.FuncSettle, &w)
	return err
}

// Since implements store.Store with FuncHistory.
func (s *Store) Since(_ context.Context, p store.Part, from int64, limit int) ([]store.Change, error) {
	var w abi.Writer
	w.Part(p)
	w.U64(uint64(from))
	w.U64(uint64(limit))
	res, err := s.call(abi.FuncHistory, &w)
	if err != nil {
		return nil, err
	}
	r := abi.NewReader(res)
	n := r.U64()
	if n > uint64(len(res)) {
		return nil, abi.ErrShort
	}
	out := make([]store.Change, 0, n)
	for range n {
		var c abi.Change
		c.Read(r)
		out = append(out, store.Change(c))
	}
	return out, r.Done()
}

// Subscribers implements store.Subscribers with one FuncSubscribers
// call for all the topics.
func (s *Store) Subscribers(_ context.Context, topics []string) ([]store.Subscription, error) {
	var w abi.Writer
	w.U64(uint64(len(topics)))
	for _, t := range topics {
		w.String(t)
	}
	res, err := s.call(abi.FuncSubscribers, &w)
	if err != nil {
		return nil, err
	}
	r := abi.NewReader(res)
	n := r.U64()
	if n > uint64(len(res)) {
		return nil, abi.ErrShort
	}
	subs := make([]store.Subscription, 0, n)
	in := abi.NewInterner()
	for range n {
		subs = append(subs, r.SubscriptionInterned(in))
	}
	return subs, r.Done()
}

// logger sends the router's errors to the host's log.
type logger struct{ c Caller }

func (l logger) Error(msg string, args ...any) {
	line := msg
	for i := 0; i+1 < len(args); i += 2 {
		k, _ := args[i].(string)
		line += " " + k + "=" + strconv.Quote(toString(args[i+1]))
	}
	Log(l.c, abi.LevelError, line)
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case error:
		return v.Error()
	}
	return "?"
}

// Log writes a line to the host's log.
func Log(c Caller, level int, msg string) {
	var w abi.Writer
	w.U64(uint64(level))
	w.String(msg)
	c.Call(abi.FuncLog, w.B)
}

func newRouter(c Caller, reg *resource.Registry) *router.Router {
	return router.New(router.Config{
		Registry: reg,
		Store:    NewStore(c),
		Now:      func() time.Time { return time.Unix(0, c.Now()).UTC() },
		Log:      logger{c},
		Post:     func(_ context.Context, frame []byte, conns []string) error { return post(c, frame, conns) },
		History:  history(),
	})
}

// history is the replay settings; the host refused bad ones at start.
func history() router.History {
	h, _ := router.HistoryFromEnv(os.Getenv)
	return h
}

// post sends frame to the connections with one FuncPost call.
func post(c Caller, frame []byte, conns []string) error {
	var w abi.Writer
	w.Bytes(frame)
	w.U64(uint64(len(conns)))
	for _, id := range conns {
		w.String(id)
	}
	st, res := c.Call(abi.FuncPost, w.B)
	if st != abi.OK {
		return errors.New("post: " + string(res))
	}
	// The host may say which connections are gone.
	if len(res) > 0 {
		r := abi.NewReader(res)
		if n := r.U64(); n > 0 && int(n) == len(conns) && r.Err() == nil {
			return router.ErrGone
		}
	}
	return nil
}

// Route is the route function: a Message in, its reply frame out.
func Route(c Caller, reg *resource.Registry) Entry {
	r := newRouter(c, reg)
	return func(in []byte) []byte {
		var m abi.Message
		if err := m.Decode(abi.NewReader(in)); err != nil {
			Log(c, abi.LevelError, "wsbind: route: undecodable message from the host: "+err.Error())
			return protocol.Reply(nil, &protocol.Request{}, 0, nil, apierr.Internal(err))
		}
		return r.Handle(context.Background(), router.Conn{ID: m.ConnID, User: m.User}, m.Frame)
	}
}

// Fanout is the streamfanout function: a Change in, an Outcome out. It
// finds the subscribers of every topic the change reaches in one host
// call, lets the router decide each connection's push, and posts each
// distinct push (at most three: create, update, delete) to its
// connections in one host call. A change the bindings cannot push
// (another stream's item, an item that does not match its binding, a
// change without its image) is logged and skipped; a failure to read
// subscriptions or to post answers Failed, so the host reports the record
// for a retry (pushes already posted may then be sent again).
func Fanout(c Caller, reg *resource.Registry) Entry {
	r := newRouter(c, reg)
	st := NewStore(c)
	return func(in []byte) []byte {
		var ch abi.Change
		if err := ch.Decode(abi.NewReader(in)); err != nil {
			return outcome(abi.BadCall, "undecodable change: "+err.Error())
		}
		posts, err := r.Fanout(context.Background(), st, router.Change(ch))
		switch {
		case errors.Is(err, router.ErrUnknownStream):
			return outcome(abi.OK, "")
		case errors.Is(err, store.ErrCorrupt), errors.Is(err, router.ErrBadChange):
			Log(c, abi.LevelError, "wsbind: fan-out skipped a change: "+err.Error())
			return outcome(abi.OK, "")
		case err != nil:
			return outcome(abi.Failed, err.Error())
		case len(posts) == 0:
			return outcome(abi.OK, "")
		}
		// One host call per distinct frame: a change makes at most three
		// (its create, update and delete pushes), each shared by the
		// connections it goes to.
		for _, g := range byFrame(posts) {
			if err := post(c, g.frame, g.conns); err != nil && !errors.Is(err, router.ErrGone) {
				return outcome(abi.Failed, err.Error())
			}
		}
		return outcome(abi.OK, "")
	}
}

// postGroup is one frame and the connections it goes to.
type postGroup struct {
	frame []byte
	conns []string
}

// byFrame groups posts by their frame, in the order each frame first
// appears, each group's connections in the posts' order.
func byFrame(posts []router.Post) []postGroup {
	var groups []postGroup
	for _, p := range posts {
		i := slices.IndexFunc(groups, func(g postGroup) bool { return bytes.Equal(g.frame, p.Frame) })
		if i < 0 {
			groups = append(groups, postGroup{frame: p.Frame})
			i = len(groups) - 1
		}
		groups[i].conns = append(groups[i].conns, p.ConnID)
	}
	return groups
}

// Connect is the connect function: a ConnEvent in, an Outcome out. Its
// policy accepts every connection the host let through (the host has
// verified the token, if any) and records it; a disconnect drops the
// connection and its subscriptions.
func Connect(c Caller) Entry {
	return func(in []byte) []byte {
		var e abi.ConnEvent
		if err := e.Decode(abi.NewReader(in)); err != nil {
			return outcome(abi.BadCall, "undecodable event: "+err.Error())
		}
		var w abi.Writer
		fn := abi.FuncConnPut
		switch e.Kind {
		case abi.EventConnect:
			e.Encode(&w)
		case abi.EventDisconnect:
			fn = abi.FuncConnDrop
			w.String(e.ConnID)
		default:
			return outcome(abi.BadCall, "unknown event kind "+strconv.Quote(e.Kind))
		}
		if st, res := c.Call(fn, w.B); st != abi.OK {
			return outcome(abi.Failed, fn.String()+": "+string(res))
		}
		return outcome(abi.OK, "")
	}
}

func outcome(s abi.Status, msg string) []byte {
	var w abi.Writer
	o := abi.Outcome{Status: s, Message: msg}
	o.Encode(&w)
	return w.B
}

// All returns every entry point over c, keyed by export name: what the
// host's native engine serves in place of the three wasm guests.
func All(c Caller, reg *resource.Registry) map[string]Entry {
	return map[string]Entry{
		abi.ExportRoute:    Route(c, reg),
		abi.ExportFanout:   Fanout(c, reg),
		abi.ExportConnect:  Connect(c),
		abi.ExportDescribe: DescribeEntry(reg),
	}
}

// Settings reads the application settings a deployment may set in the
// functions' environment: WSBIND_PAGE_SIZE (DEFAULT_PAGE_SIZE).
func Settings(getenv func(string) string) resource.Settings {
	var s resource.Settings
	if n, err := strconv.Atoi(getenv("WSBIND_PAGE_SIZE")); err == nil && n > 0 {
		s.PageSize = n
	}
	return s
}
