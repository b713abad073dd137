package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Object is one object of a Snapshot.
type Object struct {
	PK string
	// Version is the version of the push that last set the object; 0
	// when it is known from a list only (lists carry no versions), which
	// any push of it replaces.
	Version int64
	// Data is the object as serialized by the server, or null (a list's
	// stub, a push) when Truncated: retrieve it if you need it.
	Data      json.RawMessage
	Truncated bool
}

// Decode unmarshals the object's Data into v.
func (o Object) Decode(v any) error { return json.Unmarshal(o.Data, v) }

// Snapshot is a live copy of a stream's objects (those a filter
// matches): every page listed, then kept current by subscriptions to
// create, update and delete, resumed from the list's cursor, so that no
// change is missed between the list and the pushes. Per object it keeps
// the highest version seen and drops a push at or below it. When a
// subscription reports a gap (the client could not resume after a
// reconnect) it lists everything again. Its methods are safe for
// concurrent use.
type Snapshot struct {
	st     *Stream
	filter filter
	subs   []*Subscription
	relist chan struct{} // a gap asks for a new list
	cancel context.CancelFunc
	done   chan struct{} // closed when loop returns

	mu       sync.Mutex
	objects  map[string]Object
	versions map[string]int64 // the highest version seen of every pk, deleted ones included
	// recording: a list is in progress; the pushes applied meanwhile are
	// applied again on top of it (they may be newer than its pages).
	recording bool
	recorded  []Event
	changed   chan struct{} // closed at the next change
	err       error
	closed    bool
	dups      int64
	relists   int64
}

// Snapshot lists the stream's objects that match filter (nil for all)
// and keeps them current until Close. It returns once the first list is
// in and the replay since it is applied.
func (st *Stream) Snapshot(ctx context.Context, filterBy map[string]any) (*Snapshot, error) {
	f, _, err := newFilter(filterBy)
	if err != nil {
		return nil, err
	}
	sn := &Snapshot{
		st:       st,
		filter:   f,
		relist:   make(chan struct{}, 1),
		done:     make(chan struct{}),
		objects:  map[string]Object{},
		versions: map[string]int64{},
		changed:  make(chan struct{}),
	}
	// Subscribe first, then list (recording the pushes) and subscribe
	// again from the list's cursor: the same steps as after a gap. A
	// server with cursors replays what the list missed; one without still
	// pushes every change made since the subscriptions, which the
	// recording applies.
	for _, action := range []string{"create", "update", "delete"} {
		s, err := st.subscribe(ctx, Sub{Action: action, Filter: filterBy}, sn.apply)
		if err != nil {
			sn.unsubscribe(ctx)
			return nil, err
		}
		sn.subs = append(sn.subs, s)
	}
	if err := sn.rebuild(ctx); err != nil {
		sn.unsubscribe(ctx)
		return nil, err
	}
	c := st.c
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.wg.Add(1)
	c.mu.Unlock()
	var ctxLoop context.Context
	ctxLoop, sn.cancel = context.WithCancel(c.ctx)
	go sn.loop(ctxLoop)
	return sn, nil
}

// Get returns the object pk.
func (sn *Snapshot) Get(pk string) (Object, bool) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	o, ok := sn.objects[pk]
	return o, ok
}

// Len is the number of objects.
func (sn *Snapshot) Len() int {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	return len(sn.objects)
}

// Objects returns the objects, ordered by pk.
func (sn *Snapshot) Objects() []Object {
	sn.mu.Lock()
	out := make([]Object, 0, len(sn.objects))
	for _, o := range sn.objects {
		out = append(out, o)
	}
	sn.mu.Unlock()
	slices.SortFunc(out, func(a, b Object) int { return strings.Compare(a.PK, b.PK) })
	return out
}

// Changed returns a channel closed at the snapshot's next change (or
// when it ends).
func (sn *Snapshot) Changed() <-chan struct{} {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	return sn.changed
}

// Wait waits until cond, called with the objects after each change (and
// at once), reports true. cond must not keep the map nor call the
// snapshot's methods.
func (sn *Snapshot) Wait(ctx context.Context, cond func(objects map[string]Object) bool) error {
	for {
		sn.mu.Lock()
		ok, err, ch := cond(sn.objects), sn.err, sn.changed
		sn.mu.Unlock()
		if ok {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Duplicates counts the pushes dropped because the snapshot held that
// version of their object, or a later one.
func (sn *Snapshot) Duplicates() int64 {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	return sn.dups
}

// Relists counts the gaps that made the snapshot list again.
func (sn *Snapshot) Relists() int64 {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	return sn.relists
}

// Err is why the snapshot stopped being kept current: ErrClosed, a
// subscription refused after a reconnect, or nil.
func (sn *Snapshot) Err() error {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	return sn.err
}

// Close stops keeping the snapshot current and unsubscribes. Its
// objects stay readable.
func (sn *Snapshot) Close(ctx context.Context) error {
	sn.cancel()
	<-sn.done
	sn.mu.Lock()
	closed := sn.closed
	sn.closed = true
	sn.mu.Unlock()
	if closed {
		return nil
	}
	sn.fail(ErrUnsubscribed)
	return sn.unsubscribe(ctx)
}

func (sn *Snapshot) unsubscribe(ctx context.Context) error {
	var errs []error
	for _, s := range sn.subs {
		errs = append(errs, s.Unsubscribe(ctx))
	}
	return errors.Join(errs...)
}

func (sn *Snapshot) fail(err error) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.err == nil {
		sn.err = err
		close(sn.changed)
		sn.changed = make(chan struct{})
	}
}

// loop lists again after each gap, until Close or a subscription ends.
func (sn *Snapshot) loop(ctx context.Context) {
	c := sn.st.c
	defer c.wg.Done()
	defer close(sn.done)
	failures := 0
	for {
		select {
		case <-sn.relist:
			// A gap: list again, and again after a failure, until it
			// works or the snapshot ends. After a reconnect, each
			// subscription reports its gap as it is made again: once they
			// all are, one list serves them all.
			if c.awaitConnected(ctx) != nil {
				return
			}
			select {
			case <-sn.relist:
			default:
			}
			sn.mu.Lock()
			sn.relists++
			sn.mu.Unlock()
			for {
				err := sn.rebuild(ctx)
				if err == nil {
					failures = 0
					break
				}
				if ctx.Err() != nil {
					return
				}
				c.log.Warn("wsbind client: snapshot list failed", "stream", sn.st.name, "err", err)
				failures++
				if !sleepCtx(ctx, c.backoff(failures)) {
					return
				}
			}
		case <-sn.subs[0].done:
			sn.ended(sn.subs[0])
			return
		case <-sn.subs[1].done:
			sn.ended(sn.subs[1])
			return
		case <-sn.subs[2].done:
			sn.ended(sn.subs[2])
			return
		case <-ctx.Done():
			if c.ctx.Err() != nil {
				sn.fail(ErrClosed)
			}
			return
		}
	}
}

func (sn *Snapshot) ended(s *Subscription) {
	if err := s.Err(); !errors.Is(err, ErrUnsubscribed) {
		sn.fail(err)
	}
}

// apply is the subscriptions' sink: one push (or gap), in the reader's
// goroutine.
func (sn *Snapshot) apply(ev Event) {
	if ev.Gap {
		select {
		case sn.relist <- struct{}{}:
		default:
		}
		return
	}
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.recording {
		sn.recorded = append(sn.recorded, ev)
	}
	sn.applyLocked(ev)
}

// applyLocked applies a push unless the snapshot has seen that version
// of its object or a later one.
func (sn *Snapshot) applyLocked(ev Event) {
	if ev.PK == "" {
		return
	}
	if ev.Version > 0 {
		if ev.Version <= sn.versions[ev.PK] {
			sn.dups++
			return
		}
		sn.versions[ev.PK] = ev.Version
	}
	switch ev.Action {
	case "create", "update":
		sn.objects[ev.PK] = Object{PK: ev.PK, Version: ev.Version, Data: ev.Data, Truncated: ev.Truncated}
	case "delete":
		// Deleted, or out of the filter: a later version may bring it back.
		delete(sn.objects, ev.PK)
	default:
		return
	}
	sn.changedLocked()
}

func (sn *Snapshot) changedLocked() {
	close(sn.changed)
	sn.changed = make(chan struct{})
}

// rebuild lists every page and makes the list the snapshot: the pushes
// applied while it was listing are applied again on top of it (a page
// may be older than they are), and the subscriptions are made again
// from the first page's cursor, so that the server replays every change
// after it. A pk the list lacks keeps the version seen before the list
// started, so that a late repeat of an old push cannot bring back a
// deleted object.
func (sn *Snapshot) rebuild(ctx context.Context) error {
	sn.mu.Lock()
	sn.recording = true
	sn.recorded = nil
	before := maps.Clone(sn.versions)
	sn.mu.Unlock()

	items, cursor, err := sn.st.listAll(ctx)
	if err != nil {
		sn.mu.Lock()
		sn.recording = false
		sn.recorded = nil
		sn.mu.Unlock()
		return err
	}

	sn.mu.Lock()
	objects := make(map[string]Object, len(items))
	for _, o := range items {
		if o.Truncated || sn.filter.matches(o.Data) {
			objects[o.PK] = o
		}
	}
	versions := make(map[string]int64, len(before))
	for pk, v := range before {
		if _, listed := objects[pk]; !listed {
			versions[pk] = v
		}
	}
	sn.objects, sn.versions = objects, versions
	recorded := sn.recorded
	sn.recording, sn.recorded = false, nil
	for _, ev := range recorded {
		sn.applyLocked(ev)
	}
	sn.changedLocked()
	sn.mu.Unlock()

	if cursor == "" {
		return nil // a server without cursors: the recording was all there is
	}
	for _, s := range sn.subs {
		if err := s.Resubscribe(ctx, cursor); err != nil {
			return err
		}
	}
	return nil
}

// listAll lists every page, each after the last pk of the one before
// (ListAfter), until a page shorter than the first or an empty one. The
// cursor is the first page's. By page number, an object deleted from an
// earlier page meanwhile would shift a later one past the page that
// should hold it. A server that ignores after sends the first page
// again (or "Invalid page."): listAll then lists by page number, as
// servers before keyset pages must be read.
func (st *Stream) listAll(ctx context.Context) ([]Object, string, error) {
	var (
		out    []Object
		cursor string
		size   int
		after  string
	)
	for page := 1; ; page++ {
		r, err := st.ListAfter(ctx, after)
		var e *Error
		if after != "" && errors.As(err, &e) && e.Status == http.StatusNotFound && e.Has("Invalid page.") {
			// A server that knows page numbers only may take a page after
			// a pk for a page past the last.
			return st.listPages(ctx)
		}
		if err != nil {
			return nil, "", err
		}
		items, err := listedPage(st.name, page, r)
		if err != nil {
			return nil, "", err
		}
		if page == 1 {
			cursor, size = r.Cursor, len(items)
		} else if len(items) > 0 && items[0].PK <= after {
			return st.listPages(ctx) // not a page after: the server ignored after
		}
		out = append(out, items...)
		if len(items) == 0 || len(items) < size {
			return out, cursor, nil
		}
		if after = items[len(items)-1].PK; after == "" {
			return nil, "", fmt.Errorf("wsbind client: %s list page %d: its last object has no id to list after", st.name, page)
		}
	}
}

// listPages lists every page by number: until a page shorter than the
// first, an empty one, or "Invalid page.". The cursor is the first
// page's.
func (st *Stream) listPages(ctx context.Context) ([]Object, string, error) {
	var (
		out    []Object
		cursor string
		size   int
	)
	for page := 1; ; page++ {
		r, err := st.List(ctx, page)
		var e *Error
		if page > 1 && errors.As(err, &e) && e.Status == http.StatusNotFound && e.Has("Invalid page.") {
			return out, cursor, nil
		}
		if err != nil {
			return nil, "", err
		}
		items, err := listedPage(st.name, page, r)
		if err != nil {
			return nil, "", err
		}
		if page == 1 {
			cursor, size = r.Cursor, len(items)
		}
		out = append(out, items...)
		if len(items) == 0 || len(items) < size {
			return out, cursor, nil
		}
	}
}

// listedPage is a page's entries.
func listedPage(stream string, page int, r *Result) ([]Object, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(r.Data, &items); err != nil {
		return nil, fmt.Errorf("wsbind client: %s list page %d: %w", stream, page, err)
	}
	out := make([]Object, len(items))
	for i, it := range items {
		out[i] = listed(it)
	}
	return out, nil
}

// listed is one entry of a page: an object, or the stub that stands for
// one too large for the page ({"id": pk, "truncated": true}).
func listed(it json.RawMessage) Object {
	o := Object{PK: objectID(it), Data: it}
	var stub map[string]json.RawMessage
	if json.Unmarshal(it, &stub) == nil && len(stub) == 2 && string(stub["truncated"]) == "true" {
		if _, ok := stub["id"]; ok {
			o.Truncated = true
		}
	}
	return o
}
