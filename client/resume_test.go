package client

// Tests of resuming, repeats and gaps against the fake server (fake_test.go),
// which speaks the cursor wire the emulator does not have yet.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const wait = 5 * time.Second

// states collects a client's states.
type states chan State

func (s states) on(st State) {
	select {
	case s <- st:
	default:
	}
}

// await waits for state want, skipping others.
func (s states) await(t testing.TB, want State) {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case got := <-s:
			if got == want {
				return
			}
		case <-deadline:
			t.Fatalf("state %v never came", want)
		}
	}
}

// dialFake connects to f with short backoffs and timeouts; the client is
// closed when the test ends.
func dialFake(t testing.TB, f *fake, opts Options) (*Client, states) {
	t.Helper()
	st := make(states, 64)
	if opts.OnState == nil {
		opts.OnState = st.on
	}
	if opts.BackoffBase == 0 {
		opts.BackoffBase = 10 * time.Millisecond
	}
	if opts.BackoffMax == 0 {
		opts.BackoffMax = 100 * time.Millisecond
	}
	if opts.Timeout == 0 {
		opts.Timeout = wait
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := Dial(ctx, f.url(), opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, st
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func next(t testing.TB, s *Subscription) Event {
	t.Helper()
	ev, err := s.Next(ctxT(t))
	if err != nil {
		t.Fatalf("next event: %v", err)
	}
	return ev
}

// quiet fails if s delivers an event within d.
func quiet(t testing.TB, s *Subscription, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if ev, err := s.Next(ctx); err == nil {
		t.Fatalf("unexpected event %+v", ev)
	}
}

// wantUpdate checks that ev is the update of pk to version v.
func wantEvent(t testing.TB, ev Event, action, pk string, v int64, replay bool) {
	t.Helper()
	if ev.Gap || ev.Action != action || ev.PK != pk || ev.Version != v || ev.Replay != replay {
		t.Fatalf("event %+v, want %s %s v%d replay=%v", ev, action, pk, v, replay)
	}
}

// cut ends the connection and keeps the client out until the returned
// function lets it back.
func cut(t testing.TB, f *fake, st states) (letIn func()) {
	t.Helper()
	f.set(func(f *fake) { f.refuse = true })
	f.kill()
	st.await(t, Reconnecting)
	return func() { f.set(func(f *fake) { f.refuse = false }) }
}

// TestResume: after a reconnect, the subscription is made again from the
// cursor of the last push it delivered; the changes made while it was
// away arrive as replays, once each, before the live ones.
func TestResume(t *testing.T) {
	f := newFake(t)
	c, st := dialFake(t, f, Options{})
	st.await(t, Connected)
	f.write("items", "create", "a", map[string]any{"n": 0})
	sub, err := c.Stream("items").Subscribe(ctxT(t), Sub{Action: "update"})
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 3; n++ {
		f.write("items", "update", "a", map[string]any{"n": n})
		wantEvent(t, next(t, sub), "update", "a", int64(n+1), false)
	}
	if got := sub.Cursor(); got != "c4" {
		t.Fatalf("cursor %q after 3 updates, want c4", got)
	}
	letIn := cut(t, f, st)
	for n := 4; n <= 6; n++ {
		f.write("items", "update", "a", map[string]any{"n": n}) // nobody connected
	}
	letIn()
	st.await(t, Connected)
	for v := int64(5); v <= 7; v++ {
		wantEvent(t, next(t, sub), "update", "a", v, true)
	}
	f.write("items", "update", "a", map[string]any{"n": 7})
	wantEvent(t, next(t, sub), "update", "a", 8, false)
	quiet(t, sub, 100*time.Millisecond)

	subs := f.requestsOf("subscribe")
	if len(subs) != 2 || !strings.Contains(string(subs[1].Data), `"since":"c4"`) {
		t.Errorf("subscribe requests %s; want a second with since c4", fmtPayloads(subs))
	}
	if sub.Duplicates() != 0 || c.Stats().Gaps != 0 {
		t.Errorf("duplicates %d, gaps %d; want none", sub.Duplicates(), c.Stats().Gaps)
	}
	if s := c.Stats(); s.Connections != 2 {
		t.Errorf("stats %+v, want 2 connections", s)
	}
}

// TestResume_Repeats: pushes sent twice, and a replay that overlaps what
// was delivered, reach the application once; the repeats are counted.
func TestResume_Repeats(t *testing.T) {
	f := newFake(t)
	f.set(func(f *fake) { f.repeat = true })
	c, st := dialFake(t, f, Options{})
	st.await(t, Connected)
	f.write("items", "create", "a", nil)
	sub, err := c.Stream("items").Subscribe(ctxT(t), Sub{Action: "update"})
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 3; n++ {
		f.write("items", "update", "a", map[string]any{"n": n})
	}
	for v := int64(2); v <= 4; v++ {
		wantEvent(t, next(t, sub), "update", "a", v, false)
	}
	// Resubscribe from an older cursor: its replay repeats v3 and v4,
	// interleaved with live repeats.
	if err := sub.Resubscribe(ctxT(t), "c2"); err != nil {
		t.Fatal(err)
	}
	f.write("items", "update", "a", map[string]any{"n": 4})
	wantEvent(t, next(t, sub), "update", "a", 5, false)
	quiet(t, sub, 100*time.Millisecond)
	// 3 live repeats, 2 replayed, 1 more live repeat.
	if got := sub.Duplicates(); got != 6 {
		t.Errorf("duplicates %d, want 6", got)
	}
	if got := c.Stats().Duplicates; got != sub.Duplicates() {
		t.Errorf("client counts %d duplicates, the subscription %d", got, sub.Duplicates())
	}
	t.Logf("dropped %d repeated pushes", sub.Duplicates())
}

// TestGap_HistoryGone: when the server no longer has the changes after
// the cursor, the subscription delivers a Gap event, forgets the cursor,
// and live pushes follow.
func TestGap_HistoryGone(t *testing.T) {
	f := newFake(t)
	c, st := dialFake(t, f, Options{})
	st.await(t, Connected)
	f.write("items", "create", "a", nil)
	sub, err := c.Stream("items").Subscribe(ctxT(t), Sub{Action: "update"})
	if err != nil {
		t.Fatal(err)
	}
	f.write("items", "update", "a", nil)
	wantEvent(t, next(t, sub), "update", "a", 2, false)
	letIn := cut(t, f, st)
	f.write("items", "update", "a", nil)
	f.set(func(f *fake) { f.retained = f.seq }) // history gone
	letIn()
	if ev := next(t, sub); !ev.Gap || ev.Action != "update" {
		t.Fatalf("event %+v, want a gap", ev)
	}
	if sub.Cursor() != "" {
		t.Errorf("cursor %q after a gap, want none", sub.Cursor())
	}
	f.write("items", "update", "a", nil)
	wantEvent(t, next(t, sub), "update", "a", 4, false)
	if g := c.Stats().Gaps; g != 1 {
		t.Errorf("%d gaps, want 1", g)
	}
}

// TestGap_NoCursor: a subscription that has no cursor to resume from (a
// server without cursors) reports a gap after every reconnect.
func TestGap_NoCursor(t *testing.T) {
	f := newFake(t)
	f.set(func(f *fake) { f.noCursors = true })
	c, st := dialFake(t, f, Options{})
	st.await(t, Connected)
	f.write("items", "create", "a", nil)
	sub, err := c.Stream("items").Subscribe(ctxT(t), Sub{Action: "update", PK: "a"})
	if err != nil {
		t.Fatal(err)
	}
	f.write("items", "update", "a", nil)
	wantEvent(t, next(t, sub), "update", "a", 2, false)
	f.kill()
	st.await(t, Reconnecting)
	st.await(t, Connected)
	if ev := next(t, sub); !ev.Gap {
		t.Fatalf("event %+v, want a gap", ev)
	}
	f.write("items", "update", "a", nil)
	wantEvent(t, next(t, sub), "update", "a", 3, false)
}

// TestResume_BadCursor: a since the server refuses is a 400 at
// Subscribe; after a reconnect, the client subscribes again without it
// and reports the gap.
func TestResume_BadCursor(t *testing.T) {
	f := newFake(t)
	c, st := dialFake(t, f, Options{})
	st.await(t, Connected)
	_, err := c.Stream("items").Subscribe(ctxT(t), Sub{Action: "update", Since: "bogus"})
	var e *Error
	if !errors.As(err, &e) || e.Status != 400 || len(e.Fields["since"]) != 1 {
		t.Fatalf("subscribe with a bad since: %v, want a 400 on since", err)
	}
	f.write("items", "create", "a", nil)
	sub, err := c.Stream("items").Subscribe(ctxT(t), Sub{Action: "update"})
	if err != nil {
		t.Fatal(err)
	}
	f.write("items", "update", "a", nil)
	wantEvent(t, next(t, sub), "update", "a", 2, false)
	f.set(func(f *fake) { f.badCursors = true })
	f.kill()
	if ev := next(t, sub); !ev.Gap {
		t.Fatalf("event %+v, want a gap", ev)
	}
	f.write("items", "update", "a", nil)
	wantEvent(t, next(t, sub), "update", "a", 3, false)
	if err := sub.Err(); err != nil {
		t.Errorf("subscription ended: %v", err)
	}
}

// TestWrite_ResentAfterDrop: a write whose connection ends before its
// reply is sent again on the next connection with the same idempotency
// key, and the server's first reply comes back: one object.
func TestWrite_ResentAfterDrop(t *testing.T) {
	f := newFake(t)
	c, st := dialFake(t, f, Options{})
	st.await(t, Connected)
	items := c.Stream("items")
	f.set(func(f *fake) { f.dropWrites = 1 })
	r, err := items.Create(ctxT(t), map[string]any{"name": "once"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 201 || r.PK == "" || r.Version != 1 {
		t.Fatalf("create: %+v", r)
	}
	creates := f.requestsOf("create")
	if len(creates) != 2 || creates[0].IdempotencyKey == "" || creates[0].IdempotencyKey != creates[1].IdempotencyKey {
		t.Fatalf("create requests %s, want 2 with one key", fmtPayloads(creates))
	}
	if n := len(f.truth("items")); n != 1 {
		t.Errorf("%d objects, want 1", n)
	}
	// And an update with if_version, dropped the same way.
	f.set(func(f *fake) { f.dropWrites = 1 })
	r, err = items.Update(ctxT(t), r.PK, map[string]any{"name": "twice"}, IfVersion(1))
	if err != nil || r.Version != 2 {
		t.Fatalf("update: %+v, %v", r, err)
	}
	if s := c.Stats(); s.Resent != 2 || s.Connections != 3 {
		t.Errorf("stats %+v, want 2 resent on 3 connections", s)
	}
}

// TestWrite_InProgress: while the server says the key's first request is
// still running, the client waits and asks again.
func TestWrite_InProgress(t *testing.T) {
	f := newFake(t)
	c, _ := dialFake(t, f, Options{})
	f.set(func(f *fake) { f.inProgress = 2 })
	r, err := c.Stream("items").Create(ctxT(t), map[string]any{}, IdempotencyKey("mine"))
	if err != nil || r.Status != 201 {
		t.Fatalf("create: %+v, %v", r, err)
	}
	creates := f.requestsOf("create")
	if len(creates) != 3 {
		t.Fatalf("%d create requests, want 3", len(creates))
	}
	for _, p := range creates {
		if p.IdempotencyKey != "mine" {
			t.Errorf("key %q, want mine", p.IdempotencyKey)
		}
	}
}

// TestTokenExpired: a 401 "Token expired" makes the client reconnect
// with a new token from the hook and send the request again.
func TestTokenExpired(t *testing.T) {
	f := newFake(t)
	var mu sync.Mutex
	calls := 0
	c, _ := dialFake(t, f, Options{Token: func(context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return fmt.Sprintf("t%d", calls), nil
	}})
	f.set(func(f *fake) { f.expired["t1"] = true })
	r, err := c.Stream("items").Create(ctxT(t), map[string]any{})
	if err != nil || r.Status != 201 {
		t.Fatalf("create: %+v, %v", r, err)
	}
	f.mu.Lock()
	tokens := f.tokens
	f.mu.Unlock()
	if strings.Join(tokens, ",") != "t1,t2" {
		t.Errorf("connections with tokens %v, want t1,t2", tokens)
	}
}

// TestErrors_TimeoutAndLoss: no reply on a working connection is
// ErrTimeout; no connection is ErrConnectionLost; neither is an *Error.
func TestErrors_TimeoutAndLoss(t *testing.T) {
	f := newFake(t)
	c, st := dialFake(t, f, Options{Timeout: 300 * time.Millisecond})
	st.await(t, Connected)
	items := c.Stream("items")
	f.set(func(f *fake) { f.silent = true })
	_, err := items.Retrieve(context.Background(), "x")
	var e *Error
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrConnectionLost) || errors.As(err, &e) {
		t.Errorf("silent server: %v, want ErrTimeout only", err)
	}
	f.set(func(f *fake) { f.silent = false })
	cut(t, f, st)
	_, err = items.Retrieve(context.Background(), "x")
	if !errors.Is(err, ErrConnectionLost) || errors.Is(err, ErrTimeout) {
		t.Errorf("no connection: %v, want ErrConnectionLost", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err = items.Retrieve(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	_, err = items.Create(context.Background(), map[string]string{"big": strings.Repeat("x", maxMessage)})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("a 128 KB request: %v, want ErrTooLarge", err)
	}
	c.Close()
	if _, err = items.Retrieve(context.Background(), "x"); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}

// TestSubscriptions_Routing: one connection gets one push per change
// however many of its subscriptions match; the client hands it to each
// subscription whose action, pk and filter it matches, and no other.
func TestSubscriptions_Routing(t *testing.T) {
	f := newFake(t)
	c, _ := dialFake(t, f, Options{})
	items := c.Stream("items")
	f.write("items", "create", "r", map[string]any{"color": "red", "size": 1})
	f.write("items", "create", "b", map[string]any{"color": "blue", "size": 2})
	red, err := items.Subscribe(ctxT(t), Sub{Action: "update", Filter: map[string]any{"color": "red", "size": 1.0}})
	if err != nil {
		t.Fatal(err)
	}
	blue, err := items.Subscribe(ctxT(t), Sub{Action: "update", Filter: map[string]any{"color": "blue"}})
	if err != nil {
		t.Fatal(err)
	}
	justB, err := items.Subscribe(ctxT(t), Sub{Action: "update", PK: "b"})
	if err != nil {
		t.Fatal(err)
	}
	f.write("items", "update", "r", nil)
	f.write("items", "update", "b", nil)
	wantEvent(t, next(t, red), "update", "r", 2, false)
	wantEvent(t, next(t, blue), "update", "b", 2, false)
	wantEvent(t, next(t, justB), "update", "b", 2, false)
	quiet(t, red, 50*time.Millisecond)
	quiet(t, justB, 10*time.Millisecond)
}

// TestSubscriptions_SameTwice: two subscriptions to the same thing are
// one on the server: unsubscribing one leaves the other receiving, and
// only the last sends unsubscribe.
func TestSubscriptions_SameTwice(t *testing.T) {
	f := newFake(t)
	c, _ := dialFake(t, f, Options{})
	items := c.Stream("items")
	f.write("items", "create", "a", nil)
	one, err := items.Subscribe(ctxT(t), Sub{Action: "update"})
	if err != nil {
		t.Fatal(err)
	}
	two, err := items.Subscribe(ctxT(t), Sub{Action: "update"})
	if err != nil {
		t.Fatal(err)
	}
	if err := one.Unsubscribe(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := one.Next(ctxT(t)); !errors.Is(err, ErrUnsubscribed) {
		t.Errorf("next after unsubscribe: %v", err)
	}
	if n := len(f.requestsOf("unsubscribe")); n != 0 {
		t.Errorf("%d unsubscribes sent while another subscription needs it", n)
	}
	f.write("items", "update", "a", nil)
	wantEvent(t, next(t, two), "update", "a", 2, false)
	if err := two.Unsubscribe(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(f.requestsOf("unsubscribe")); n != 1 {
		t.Errorf("%d unsubscribes sent, want 1", n)
	}
}

// TestEvents_Channel: Events delivers in order and is closed by
// Unsubscribe.
func TestEvents_Channel(t *testing.T) {
	f := newFake(t)
	c, _ := dialFake(t, f, Options{})
	f.write("items", "create", "a", nil)
	sub, err := c.Stream("items").Subscribe(ctxT(t), Sub{Action: "update"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		f.write("items", "update", "a", nil)
	}
	ch := sub.Events()
	for v := int64(2); v <= 4; v++ {
		select {
		case ev := <-ch:
			wantEvent(t, ev, "update", "a", v, false)
		case <-time.After(wait):
			t.Fatal("no event")
		}
	}
	if err := sub.Unsubscribe(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("an event after Unsubscribe")
		}
	case <-time.After(wait):
		t.Fatal("Events not closed by Unsubscribe")
	}
}

// clientGoroutines lists the goroutines running the client's own code
// (not a test's).
func clientGoroutines() []string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "wsbind/wsbind/client.") && !strings.Contains(g, "_test.go") {
			out = append(out, g)
		}
	}
	return out
}

// settledGoroutines is clientGoroutines once they are gone, or after a
// second: a closed client's goroutines may still be returning.
func settledGoroutines() []string {
	g := clientGoroutines()
	for deadline := time.Now().Add(time.Second); len(g) != 0 && time.Now().Before(deadline); g = clientGoroutines() {
		time.Sleep(5 * time.Millisecond)
	}
	return g
}

// TestClose_NoLeak: after Close, no goroutine of the client is left,
// whatever was running: subscriptions read through Events, a snapshot,
// a call waiting for its reply, a reconnect loop.
func TestClose_NoLeak(t *testing.T) {
	// The clients of earlier tests are closed by their cleanups; give
	// their goroutines the same moment to return as this test's get.
	if g := settledGoroutines(); len(g) != 0 {
		t.Fatalf("client goroutines before the test:\n%s", strings.Join(g, "\n\n"))
	}
	f := newFake(t)
	before := runtime.NumGoroutine()
	c, st := dialFake(t, f, Options{})
	f.write("items", "create", "a", nil)
	items := c.Stream("items")
	sub, err := items.Subscribe(ctxT(t), Sub{Action: "update"})
	if err != nil {
		t.Fatal(err)
	}
	_ = sub.Events()
	if _, err := items.Subscribe(ctxT(t), Sub{Action: "delete"}); err != nil {
		t.Fatal(err)
	}
	if _, err := items.Snapshot(ctxT(t), nil); err != nil {
		t.Fatal(err)
	}
	f.set(func(f *fake) { f.silent = true })
	waiting := make(chan error, 1)
	go func() {
		_, err := items.Retrieve(context.Background(), "a")
		waiting <- err
	}()
	time.Sleep(50 * time.Millisecond)
	// One connection cut, so a reconnect is under way.
	f.set(func(f *fake) { f.refuse = true })
	f.kill()
	st.await(t, Reconnecting)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; !errors.Is(err, ErrClosed) {
		t.Errorf("the call in progress returned %v, want ErrClosed", err)
	}
	// A goroutine may still be returning from its last deferred call.
	if g := settledGoroutines(); len(g) != 0 {
		t.Fatalf("client goroutines after Close:\n%s", strings.Join(g, "\n\n"))
	}
	if st := c.State(); st != Closed {
		t.Errorf("state %v after Close", st)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("goroutines: %d before Dial, %d after Close", before, runtime.NumGoroutine())
}

func fmtPayloads(ps []fpayload) string {
	var b strings.Builder
	for _, p := range ps {
		raw, _ := json.Marshal(p)
		b.Write(raw)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestConcurrentCalls: calls from many goroutines at once, with the
// connection cut under them twice, each answered once and each write
// run once.
func TestConcurrentCalls(t *testing.T) {
	f := newFake(t)
	c, _ := dialFake(t, f, Options{})
	items := c.Stream("items")
	const workers, each = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r, err := items.Create(ctxT(t), map[string]any{"w": w, "i": i})
				if err == nil {
					_, err = items.Retrieve(ctxT(t), r.PK)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	for range 2 {
		time.Sleep(20 * time.Millisecond)
		f.set(func(f *fake) { f.dropWrites = 1 })
		f.kill()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(f.truth("items")); n != workers*each {
		t.Errorf("%d objects, want %d", n, workers*each)
	}
	t.Logf("stats %+v", c.Stats())
}
