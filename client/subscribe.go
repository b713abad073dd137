package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
)

// Sub says what to subscribe to.
type Sub struct {
	// Action is the kind of change: "create", "update" or "delete".
	Action string
	// PK, if not "", limits the subscription to that object.
	PK string
	// Filter, if not empty, limits it to objects whose fields equal these
	// values (docs/protocol.md §4).
	Filter map[string]any
	// Since is a cursor (a push's or a list's): the server first replays
	// the changes after it, marked Replay, then pushes live ones. ""
	// means from now on.
	Since string
}

// Event is a change pushed to a subscription, or a gap in them.
type Event struct {
	// Action is "create", "update" or "delete" (docs/protocol.md §4: an
	// update can arrive as a create or a delete when the object enters
	// or leaves what the subscription sees).
	Action string
	// PK and Version name the change; Version is 0 for an object written
	// without a version.
	PK      string
	Version int64
	// Data is the object, after the change (before it for a delete);
	// null when Truncated.
	Data      json.RawMessage
	Model     string
	Truncated bool
	// Cursor is the change's position; "" from a server without cursors.
	Cursor string
	// Replay: the change was committed before the subscription was made
	// (again), and is replayed from its Since.
	Replay bool
	// Gap: changes may have been missed, for instance while the client
	// was reconnecting and the server could not replay them. Such an
	// event carries no change: list again (or use a Snapshot, which does
	// it by itself).
	Gap bool
}

// Decode unmarshals the event's Data into v.
func (e Event) Decode(v any) error { return json.Unmarshal(e.Data, v) }

// Subscription receives the changes of one Sub, through Next or Events
// (use one of them), from the time Subscribe returns until Unsubscribe
// or Close. After every reconnect the client subscribes again with
// Since = the last cursor the subscription saw, so changes made while
// it was away are replayed; it drops a push whose version of its object
// it has already delivered (or a later one), and delivers a Gap event
// when it cannot resume. Events wait in memory until they are read.
type Subscription struct {
	c      *Client
	stream string
	sub    Sub
	filter filter
	fraw   json.RawMessage
	key    string
	// raw subscriptions deliver every push to sink (a Snapshot's: it
	// keeps versions itself), from the reader's goroutine.
	raw  bool
	sink func(Event)

	wire sync.Mutex // one (un)subscribe of this subscription at a time

	mu     sync.Mutex
	live   bool   // made on some connection: to be made again on the next
	cursor string // where to resume
	pushed bool   // a push arrived since the last subscribe was sent
	// resuming is set from a subscribe with since until its reply: live
	// pushes interleave with the replay then, so they wait in held until
	// the reply (the end of the replay) and are delivered after it. A
	// live push delivered first would make a replayed earlier version of
	// its object look like a repeat, and its later cursor would move the
	// resume point past replays not yet read.
	resuming bool
	held     []Event
	seen     map[string]int64
	queue    []Event
	err      error         // why it ended
	done     chan struct{} // closed when it ends
	stop     chan struct{} // closed when Unsubscribe or Close ends it
	notify   chan struct{}
	events   chan Event
	evOnce   sync.Once
	dups     atomic.Int64
}

// Subscribe subscribes to sub's changes on the stream and returns once
// the server has answered (after the replay, when Since is given).
func (st *Stream) Subscribe(ctx context.Context, sub Sub) (*Subscription, error) {
	return st.subscribe(ctx, sub, nil)
}

func (st *Stream) subscribe(ctx context.Context, sub Sub, sink func(Event)) (*Subscription, error) {
	f, fraw, err := newFilter(sub.Filter)
	if err != nil {
		return nil, err
	}
	c := st.c
	s := &Subscription{
		c:      c,
		stream: st.name,
		sub:    sub,
		filter: f,
		fraw:   fraw,
		key:    st.name + "\x00" + sub.Action + "\x00" + sub.PK + "\x00" + string(fraw),
		raw:    sink != nil,
		sink:   sink,
		cursor: sub.Since,
		seen:   map[string]int64{},
		done:   make(chan struct{}),
		stop:   make(chan struct{}),
		notify: make(chan struct{}, 1),
	}
	// Registered before the request, so that a replay reaches it.
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.subs[st.name] = append(slices.Clip(c.subs[st.name]), s) // a new array: route reads the old one unlocked
	c.mu.Unlock()

	s.wire.Lock()
	defer s.wire.Unlock()
	if _, err := c.do(ctx, s.subscribeRequest(sub.Since, false)); err != nil {
		c.removeSub(s)
		s.end(err)
		return nil, err
	}
	return s, nil
}

// Stream is the subscription's stream.
func (s *Subscription) Stream() string { return s.stream }

// Sub is what the subscription was made with.
func (s *Subscription) Sub() Sub { return s.sub }

// Cursor is the position the subscription would resume from: the last
// delivered push's cursor, or Since. Keep it to subscribe with Since
// after a restart.
func (s *Subscription) Cursor() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursor
}

// Duplicates counts the pushes this subscription dropped because it had
// already delivered that version of their object, or a later one.
func (s *Subscription) Duplicates() int64 { return s.dups.Load() }

// Err is why the subscription ended: ErrUnsubscribed, ErrClosed, or
// the server's refusal to make it again after a reconnect. nil while it
// lasts.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Next returns the next event, waiting for one. After Unsubscribe or
// Close it returns ErrUnsubscribed or ErrClosed (events not yet read are
// dropped); after a failure, the events received before it and then
// Err().
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	return s.next(ctx, nil)
}

func (s *Subscription) next(ctx context.Context, stop <-chan struct{}) (Event, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			ev := s.queue[0]
			s.queue[0] = Event{}
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return ev, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return Event{}, err
		}
		select {
		case <-s.notify:
		case <-s.done:
		case <-stop:
			return Event{}, ErrUnsubscribed
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// Events returns a channel of the subscription's events, closed when it
// ends (after Unsubscribe or Close, at once; after a failure, once the
// events received before it are read). Its goroutine ends with it.
func (s *Subscription) Events() <-chan Event {
	s.evOnce.Do(func() {
		s.events = make(chan Event)
		c := s.c
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed {
			close(s.events)
			return
		}
		c.wg.Add(1)
		go s.pump()
	})
	return s.events
}

func (s *Subscription) pump() {
	defer s.c.wg.Done()
	defer close(s.events)
	for {
		ev, err := s.next(context.Background(), s.stop)
		if err != nil {
			return
		}
		select {
		case s.events <- ev:
		case <-s.stop:
			return
		}
	}
}

// Unsubscribe ends the subscription and, unless another subscription of
// the client is to the same thing, unsubscribes on the server. The
// subscription has ended even when it returns an error.
func (s *Subscription) Unsubscribe(ctx context.Context) error {
	if !s.end(ErrUnsubscribed) {
		return nil
	}
	c := s.c
	others := c.removeSub(s)
	s.wire.Lock() // after any (re)subscribe of it in flight
	defer s.wire.Unlock()
	if others {
		return nil
	}
	c.mu.Lock()
	cn := c.cur
	c.mu.Unlock()
	if cn == nil {
		return nil // it ended with its connection
	}
	r := s.request("unsubscribe", "")
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	p, err := c.attempt(ctx, cn, r)
	switch {
	case errors.Is(err, errLost), errors.Is(err, ErrClosed):
		return nil // subscriptions end with their connection
	case err != nil:
		return err
	case *p.Status >= 400:
		return newError(s.stream, "unsubscribe", *p.Status, p.Errors)
	}
	return nil
}

// Resubscribe subscribes again with since (a list's cursor after a Gap,
// typically): the changes after it are replayed into the subscription,
// but for versions it has already delivered.
func (s *Subscription) Resubscribe(ctx context.Context, since string) error {
	s.wire.Lock()
	defer s.wire.Unlock()
	if err := s.Err(); err != nil {
		return err
	}
	if since != "" {
		s.mu.Lock()
		s.cursor = since
		s.mu.Unlock()
	}
	_, err := s.c.do(ctx, s.subscribeRequest(since, false))
	return err
}

type subData struct {
	Action string          `json:"action"`
	Filter json.RawMessage `json:"filter,omitempty"`
	Since  string          `json:"since,omitempty"`
}

func (s *Subscription) request(action, since string) *request {
	data, _ := json.Marshal(subData{Action: s.sub.Action, Filter: s.fraw, Since: since})
	r := &request{stream: s.stream, payload: outPayload{Action: action, Data: data}}
	if s.sub.PK != "" {
		pk := s.sub.PK
		r.payload.PK = &pk
	}
	return r
}

// subscribeRequest is the subscribe that resumes from since; again says
// it remakes a subscription a previous connection had, so that without
// a cursor the changes in between are lost: a gap.
func (s *Subscription) subscribeRequest(since string, again bool) *request {
	r := s.request("subscribe", since)
	s.mu.Lock()
	s.pushed = false
	s.resuming = since != ""
	// Live pushes held for an earlier attempt come again: this replay
	// starts before them, as they were never delivered.
	s.held = nil
	s.mu.Unlock()
	r.hook = func(p *inPayload) { s.subscribed(p, since, again) }
	return r
}

// subscribed sees a subscribe's reply, in the reader's goroutine: after
// the replay it caused, before the pushes that follow.
func (s *Subscription) subscribed(p *inPayload, since string, again bool) {
	if *p.Status >= 400 {
		// Refused: nothing was registered, so nothing live was held.
		s.mu.Lock()
		s.resuming, s.held = false, nil
		s.mu.Unlock()
		return
	}
	var d struct {
		Gap bool `json:"gap"`
	}
	_ = json.Unmarshal(p.Data, &d)
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.live = true
	s.resuming = false
	held := s.held
	s.held = nil
	s.c.log.Debug("wsbind client: subscribed", "stream", s.stream, "action", s.sub.Action, "since", since,
		"cursor", p.Cursor, "gap", d.Gap, "replayed", s.pushed, "held", len(held))
	if d.Gap {
		s.cursor = "" // too old to resume from again
	}
	if p.Cursor != "" && (since != "" || !s.pushed) {
		// A resumed subscription's reply names the position its replay
		// read to: everything before it was replayed, so it is where to
		// resume next, even for a subscription that matched none of it.
		// A fresh one's names where it began, a resume point until a
		// push brings a later one.
		s.cursor = p.Cursor
	}
	s.mu.Unlock()
	if d.Gap || (again && since == "") {
		s.deliver(Event{Action: s.sub.Action, Gap: true})
	}
	for _, ev := range held {
		s.deliver(ev)
	}
}

func (s *Subscription) isLive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live && s.err == nil
}

// wants reports whether the push ev is for this subscription.
func (s *Subscription) wants(ev *Event) bool {
	return ev.Action == s.sub.Action &&
		(s.sub.PK == "" || s.sub.PK == ev.PK) &&
		s.filter.matches(ev.Data)
}

// deliver queues ev, or drops it as a repeat. It is called only from
// the reader's goroutine, so events keep the order they arrived in.
func (s *Subscription) deliver(ev Event) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	if s.resuming && !ev.Replay && !ev.Gap {
		s.held = append(s.held, ev)
		s.mu.Unlock()
		return
	}
	if ev.Gap {
		s.c.nGaps.Add(1)
	} else {
		if !s.raw && ev.Version > 0 && ev.PK != "" {
			if ev.Version <= s.seen[ev.PK] {
				s.mu.Unlock()
				s.dups.Add(1)
				s.c.nDuplicates.Add(1)
				return
			}
			s.seen[ev.PK] = ev.Version
		}
		if ev.Cursor != "" {
			s.cursor = ev.Cursor
			s.pushed = true
		}
	}
	if s.sink != nil {
		s.mu.Unlock()
		s.sink(ev)
		return
	}
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// end ends the subscription with err, reporting false if it had ended.
func (s *Subscription) end(err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false
	}
	s.err = err
	s.live = false
	close(s.done)
	if errors.Is(err, ErrUnsubscribed) || errors.Is(err, ErrClosed) {
		close(s.stop)
		s.queue = nil
	}
	return true
}

// removeSub forgets s, reporting whether another subscription of the
// client is to the same thing.
func (c *Client) removeSub(s *Subscription) (others bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ss := c.subs[s.stream]
	ss = slices.DeleteFunc(slices.Clone(ss), func(x *Subscription) bool { return x == s })
	if len(ss) == 0 {
		delete(c.subs, s.stream)
	} else {
		c.subs[s.stream] = ss
	}
	for _, x := range ss {
		if x.key == s.key {
			return true
		}
	}
	return false
}

// route hands a push to every subscription it is for.
func (c *Client) route(stream string, p *inPayload) {
	ev := Event{
		Action:    p.Action,
		PK:        pkString(p.PK),
		Version:   p.Version,
		Data:      p.Data,
		Model:     p.Model,
		Truncated: p.Truncated,
		Cursor:    p.Cursor,
		Replay:    p.Replay,
	}
	if ev.PK == "" {
		ev.PK = objectID(p.Data)
	}
	c.mu.Lock()
	subs := c.subs[stream] // never modified in place
	c.mu.Unlock()
	n := 0
	for _, s := range subs {
		if s.wants(&ev) {
			s.deliver(ev)
			n++
		}
	}
	if n == 0 {
		c.nUnrouted.Add(1)
	}
}

// maxResubscribing bounds the subscribes in flight after a reconnect.
const maxResubscribing = 16

// resubscribeAll makes subs again on cn, each from its cursor, and
// reports Connected once they are all answered.
func (c *Client) resubscribeAll(cn *conn, subs []*Subscription) {
	if len(subs) == 0 {
		c.setState(cn.gen, Connected)
		return
	}
	var round sync.WaitGroup
	slots := make(chan struct{}, maxResubscribing)
	c.wg.Add(len(subs) + 1)
	for _, s := range subs {
		round.Add(1)
		go func() {
			defer c.wg.Done()
			defer round.Done()
			select {
			case slots <- struct{}{}:
			case <-cn.lost:
				return
			}
			defer func() { <-slots }()
			c.resubscribe(cn, s)
		}()
	}
	go func() {
		defer c.wg.Done()
		round.Wait()
		c.setState(cn.gen, Connected)
	}()
}

// resubscribe makes s again on cn, resuming from its cursor. It gives
// up when cn ends: the next connection makes it again.
func (c *Client) resubscribe(cn *conn, s *Subscription) {
	s.wire.Lock()
	defer s.wire.Unlock()
	timeouts := 0
	for s.Err() == nil {
		s.mu.Lock()
		since := s.cursor
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(c.ctx, c.opts.Timeout)
		p, err := c.attempt(ctx, cn, s.subscribeRequest(since, true))
		cancel()
		switch {
		case errors.Is(err, ErrTimeout):
			timeouts++
			if timeouts == 3 {
				c.log.Warn("wsbind client: subscribe unanswered; reconnecting", "stream", s.stream)
				cn.ws.CloseNow()
				return
			}
			continue
		case err != nil:
			return // the connection or the client ended
		case *p.Status < 400:
			return
		}
		e := newError(s.stream, "subscribe", *p.Status, p.Errors)
		switch {
		case e.Status == http.StatusUnauthorized && e.Has(msgTokenExpired):
			cn.ws.CloseNow() // reconnect with a fresh token
			return
		case e.Status == http.StatusBadRequest && since != "" && e.Fields["since"] != nil:
			// A cursor the server does not take: start over without one
			// (and deliver a gap).
			s.mu.Lock()
			if s.cursor == since {
				s.cursor = ""
			}
			s.mu.Unlock()
			continue
		}
		c.log.Warn("wsbind client: subscription refused after a reconnect", "stream", s.stream, "err", e)
		c.removeSub(s)
		s.end(e)
		return
	}
}
