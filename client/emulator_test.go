package client_test

// Tests against the local emulator: everything the server does today.

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsbind/wsbind/client"
	"github.com/wsbind/wsbind/local/emulator"
	"github.com/wsbind/wsbind/local/emulatortest"
)

const wait = 10 * time.Second

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func dial(t testing.TB, em *emulator.Emulator, opts client.Options) *client.Client {
	t.Helper()
	if opts.BackoffBase == 0 {
		opts.BackoffBase, opts.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	}
	c, err := client.Dial(ctxT(t), em.WebSocketURL(), opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func token(t testing.TB, user string, roles ...string) func(context.Context) (string, error) {
	tok := emulatortest.Token(t, user, roles...)
	return func(context.Context) (string, error) { return tok, nil }
}

type question struct {
	ID        string `json:"id"`
	Text      string `json:"question_text"`
	Published bool   `json:"published"`
}

func decode(t testing.TB, r *client.Result) question {
	t.Helper()
	var q question
	if err := r.Decode(&q); err != nil {
		t.Fatalf("decode %s: %v", r.Data, err)
	}
	return q
}

// wantError checks that err is an *Error of status whose messages hold
// msg (or, for a field error, whose field msg has messages).
func wantError(t testing.TB, err error, status int, msg string) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v, want a %d", err, status)
	}
	if e.Status != status || (!e.Has(msg) && len(e.Fields[msg]) == 0) {
		t.Fatalf("error %v (%+v), want %d with %q", err, e, status, msg)
	}
	return e
}

// TestEmulator_Requests: every request kind against the emulator, with
// its result or its typed error.
func TestEmulator_Requests(t *testing.T) {
	em := emulatortest.Start(t, nil)
	c := dial(t, em, client.Options{})
	questions := c.Stream("questions")

	t.Run("create, retrieve, update, patch, list, delete", func(t *testing.T) {
		ctx := ctxT(t)
		r, err := questions.Create(ctx, map[string]any{"question_text": "Why?"})
		if err != nil {
			t.Fatal(err)
		}
		q := decode(t, r)
		if r.Status != 201 || r.Version != 1 || r.PK == "" || r.PK != q.ID || q.Text != "Why?" {
			t.Fatalf("create: %+v %+v", r, q)
		}
		pk := r.PK
		if r, err = questions.Retrieve(ctx, pk); err != nil || r.Version != 1 || decode(t, r).Text != "Why?" {
			t.Fatalf("retrieve: %+v, %v", r, err)
		}
		if r, err = questions.Update(ctx, pk, map[string]any{"question_text": "How?"}); err != nil || r.Version != 2 || decode(t, r).Text != "How?" {
			t.Fatalf("update: %+v, %v", r, err)
		}
		if r, err = questions.Patch(ctx, pk, json.RawMessage(`{"question_text":"When?"}`)); err != nil || r.Version != 3 || decode(t, r).Text != "When?" {
			t.Fatalf("patch: %+v, %v", r, err)
		}
		r, err = questions.List(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		var page []question
		if err := r.Decode(&page); err != nil || len(page) == 0 {
			t.Fatalf("list: %s, %v", r.Data, err)
		}
		if r, err = questions.Delete(ctx, pk); err != nil || r.Version != 4 || string(r.Data) != "{}" {
			t.Fatalf("delete: %+v, %v", r, err)
		}
		_, err = questions.Retrieve(ctx, pk)
		wantError(t, err, 404, "Not found.")
		_, err = questions.List(ctx, 99)
		wantError(t, err, 404, "Invalid page.")
	})

	t.Run("custom actions", func(t *testing.T) {
		ctx := ctxT(t)
		r, err := questions.Create(ctx, map[string]any{"question_text": "Published?"})
		if err != nil {
			t.Fatal(err)
		}
		r, err = questions.Action(ctx, "publish", r.PK, nil)
		if err != nil || !decode(t, r).Published || r.Version != 2 {
			t.Fatalf("publish: %+v, %v", r, err)
		}
		r, err = questions.Action(ctx, "report", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		var rep struct{ Count, Published int }
		if err := r.Decode(&rep); err != nil || rep.Published < 1 || rep.Count < rep.Published {
			t.Fatalf("report: %s, %v", r.Data, err)
		}
		_, err = questions.Action(ctx, "publish", "nope", nil)
		wantError(t, err, 404, "Not found.")
		_, err = questions.Action(ctx, "explode", "", nil)
		wantError(t, err, 400, "Invalid Action")
	})

	t.Run("errors: field errors, stream, permission", func(t *testing.T) {
		ctx := ctxT(t)
		_, err := questions.Create(ctx, map[string]any{})
		e := wantError(t, err, 400, "question_text")
		if e.Fields["question_text"][0] != "This field is required." || e.Stream != "questions" || e.Action != "create" {
			t.Errorf("field error %+v", e)
		}
		_, err = c.Stream("nope").List(ctx, 0)
		wantError(t, err, 400, "Invalid Stream")
		_, err = c.Stream("notes").List(ctx, 0) // anonymous
		wantError(t, err, 401, "Permission Denied")
	})

	t.Run("if_version: 409 on a stale version", func(t *testing.T) {
		ctx := ctxT(t)
		r, err := questions.Create(ctx, map[string]any{"question_text": "v1"})
		if err != nil {
			t.Fatal(err)
		}
		pk := r.PK
		if _, err := questions.Patch(ctx, pk, map[string]any{"question_text": "v2"}, client.IfVersion(1)); err != nil {
			t.Fatal(err)
		}
		_, err = questions.Update(ctx, pk, map[string]any{"question_text": "stale"}, client.IfVersion(1))
		wantError(t, err, 409, "Version conflict: the object is at version 2.")
		_, err = questions.Delete(ctx, pk, client.IfVersion(1))
		wantError(t, err, 409, "Version conflict: the object is at version 2.")
		if r, err = questions.Delete(ctx, pk, client.IfVersion(2)); err != nil || r.Version != 3 {
			t.Fatalf("delete at the right version: %+v, %v", r, err)
		}
	})

	t.Run("idempotency: a repeated key answers the first reply", func(t *testing.T) {
		ctx := ctxT(t)
		key := client.NewIdempotencyKey()
		first, err := questions.Create(ctx, map[string]any{"question_text": "Once only?"}, client.IdempotencyKey(key))
		if err != nil {
			t.Fatal(err)
		}
		again, err := questions.Create(ctx, map[string]any{"question_text": "Once only?"}, client.IdempotencyKey(key))
		if err != nil {
			t.Fatal(err)
		}
		if again.PK != first.PK || again.Version != first.Version || string(again.Data) != string(first.Data) {
			t.Errorf("repeat %+v, want the first %+v", again, first)
		}
		_, err = questions.Patch(ctx, first.PK, map[string]any{}, client.IdempotencyKey(key))
		wantError(t, err, 400, "idempotency_key")
		r, err := questions.List(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(r.Data), "Once only?"); n != 1 {
			t.Errorf("%d questions made by two creates with one key, want 1", n)
		}
	})

	t.Run("a 60 KB request is sent in frames of 32 KB", func(t *testing.T) {
		// API Gateway closes the connection on a frame over 32 KB; split,
		// the request reaches the binding, which refuses the long text.
		_, err := questions.Create(ctxT(t), map[string]any{"question_text": strings.Repeat("x", 60<<10)})
		wantError(t, err, 400, "question_text")
		if n := c.Stats().Connections; n != 1 {
			t.Errorf("%d connections, want the first only", n)
		}
		_, err = questions.Create(ctxT(t), map[string]any{"question_text": strings.Repeat("x", 130<<10)})
		if !errors.Is(err, client.ErrTooLarge) {
			t.Errorf("a 130 KB request: %v, want ErrTooLarge", err)
		}
	})

	t.Run("a refused token fails Dial with 401", func(t *testing.T) {
		_, err := client.Dial(ctxT(t), em.WebSocketURL(), client.Options{Token: func(context.Context) (string, error) { return "not-a-jwt", nil }})
		var de *client.DialError
		if !errors.As(err, &de) || de.StatusCode != 401 {
			t.Errorf("dial with a bad token: %v, want a 401", err)
		}
	})
}

// TestEmulator_Subscribe: pushes reach the subscriptions they are for,
// filtered by the server and routed by the client, until Unsubscribe.
func TestEmulator_Subscribe(t *testing.T) {
	em := emulatortest.Start(t, nil)
	c := dial(t, em, client.Options{Token: token(t, "alice")})
	questions := c.Stream("questions")
	ctx := ctxT(t)
	published, err := questions.Subscribe(ctx, client.Sub{Action: "create", Filter: map[string]any{"published": true}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := questions.Create(ctx, map[string]any{"question_text": "Followed?"})
	if err != nil {
		t.Fatal(err)
	}
	pk := r.PK
	updates, err := questions.Subscribe(ctx, client.Sub{Action: "update", PK: pk})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := questions.Patch(ctx, pk, map[string]any{"question_text": "Followed!"}); err != nil {
		t.Fatal(err)
	}
	ev, err := updates.Next(ctx)
	if err != nil || ev.Action != "update" || ev.PK != pk || ev.Version != 2 || ev.Model != "polls.question" || ev.Replay || ev.Gap {
		t.Fatalf("update event %+v, %v", ev, err)
	}
	var q question
	if err := ev.Decode(&q); err != nil || q.Text != "Followed!" {
		t.Fatalf("event data %s: %v", ev.Data, err)
	}
	// Publishing another question brings it into the filter: a create
	// push, for the filtered subscription only.
	r, err = questions.Create(ctx, map[string]any{"question_text": "Unseen?"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := questions.Action(ctx, "publish", r.PK, nil); err != nil {
		t.Fatal(err)
	}
	ev, err = published.Next(ctx)
	if err != nil || ev.Action != "create" || ev.PK != r.PK || ev.Version != 2 {
		t.Fatalf("create event on publish %+v, %v", ev, err)
	}
	if err := updates.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := questions.Patch(ctx, pk, map[string]any{"question_text": "Unfollowed"}); err != nil {
		t.Fatal(err)
	}
	quiet, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if ev, err := published.Next(quiet); err == nil {
		t.Errorf("an event after the last change of interest: %+v", ev)
	}
	if _, err := updates.Next(ctx); !errors.Is(err, client.ErrUnsubscribed) {
		t.Errorf("next after unsubscribe: %v", err)
	}
	if s := c.Stats(); s.Duplicates != 0 || s.Gaps != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestEmulator_Reconnect: the emulator closes every connection after 1.5
// s, as API Gateway does after 2 hours. Across three connections the
// client asks the token hook again, makes its subscriptions again from
// their cursors (the changes made meanwhile replayed, no gap), sends
// again the writes cut off, and hands the application every change once;
// a snapshot of the published questions stays exact.
func TestEmulator_Reconnect(t *testing.T) {
	const life = 1500 * time.Millisecond
	em := emulatortest.Start(t, func(c *emulator.Config) { c.MaxLifetime = life })
	var tokens atomic.Int32
	var statesMu sync.Mutex
	var states []client.State
	tok := emulatortest.Token(t, "alice")
	c := dial(t, em, client.Options{
		Token: func(context.Context) (string, error) {
			tokens.Add(1)
			return tok, nil
		},
		OnState: func(s client.State) {
			statesMu.Lock()
			states = append(states, s)
			statesMu.Unlock()
		},
	})
	questions := c.Stream("questions")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := questions.Create(ctx, map[string]any{"question_text": "0"})
	if err != nil {
		t.Fatal(err)
	}
	pk := r.PK
	sub, err := questions.Subscribe(ctx, client.Sub{Action: "update", PK: pk})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := questions.Snapshot(ctx, map[string]any{"published": true})
	if err != nil {
		t.Fatal(err)
	}

	// The application's view of the subscription: versions delivered
	// must only grow.
	var (
		evMu     sync.Mutex
		versions []int64
		gaps     int
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range sub.Events() {
			evMu.Lock()
			if ev.Gap {
				gaps++
			} else {
				versions = append(versions, ev.Version)
			}
			evMu.Unlock()
		}
	}()

	// Write for a little over two lifetimes: patches of pk, and
	// questions created, published and unpublished for the snapshot.
	patches := 0
	var others []string
	start := time.Now()
	for i := 0; time.Since(start) < 2*life+500*time.Millisecond; i++ {
		if _, err := questions.Patch(ctx, pk, map[string]any{"question_text": time.Now().String()}); err != nil {
			t.Fatalf("patch %d: %v", i, err)
		}
		patches++
		switch i % 4 {
		case 0:
			r, err := questions.Create(ctx, map[string]any{"question_text": "other"})
			if err != nil {
				t.Fatal(err)
			}
			others = append(others, r.PK)
		case 1:
			if _, err := questions.Action(ctx, "publish", others[len(others)-1], nil); err != nil {
				t.Fatal(err)
			}
		case 2:
			if len(others) > 2 {
				if _, err := questions.Action(ctx, "unpublish", others[len(others)-3], nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		time.Sleep(40 * time.Millisecond)
	}
	final := int64(patches + 1)

	// Every patch ran exactly once: the object is at 1 + patches.
	r, err = questions.Retrieve(ctx, pk)
	if err != nil || r.Version != final {
		t.Fatalf("after %d patches: %+v, %v; want version %d", patches, r, err, final)
	}
	// The last version reaches the subscription.
	deadline := time.Now().Add(wait)
	for {
		evMu.Lock()
		last := int64(0)
		if len(versions) > 0 {
			last = versions[len(versions)-1]
		}
		evMu.Unlock()
		if last == final {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last version delivered %d, want %d", last, final)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The snapshot holds the published questions, as a list says.
	var want []question
	for page := 1; ; page++ {
		r, err := questions.List(ctx, page)
		var e *client.Error
		if errors.As(err, &e) && e.Status == 404 {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var qs []question
		if err := r.Decode(&qs); err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if q.Published {
				want = append(want, q)
			}
		}
		if len(qs) == 0 {
			break
		}
	}
	err = sn.Wait(ctx, func(objects map[string]client.Object) bool {
		if len(objects) != len(want) {
			return false
		}
		for _, q := range want {
			if _, ok := objects[q.ID]; !ok {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("snapshot of %d objects never matched the %d published questions: %v", sn.Len(), len(want), err)
	}

	s := c.Stats()
	sn.Close(ctx)
	sub.Unsubscribe(ctx)
	<-done
	evMu.Lock()
	defer evMu.Unlock()
	for i := 1; i < len(versions); i++ {
		if versions[i] <= versions[i-1] {
			t.Errorf("version %d delivered after %d", versions[i], versions[i-1])
		}
	}
	if s.Connections < 3 || int64(tokens.Load()) < s.Connections {
		t.Errorf("%d connections, %d tokens asked for; want 3 or more, a token for each", s.Connections, tokens.Load())
	}
	// The server resumes from cursors: nothing is missed, no gap, no
	// relist; every patch is delivered once.
	if gaps != 0 || sn.Relists() != 0 {
		t.Errorf("%d gaps, %d snapshot relists; want none: every resume replays from its cursor", gaps, sn.Relists())
	}
	// Live pushes wait for the replay of a resumed subscription, so no
	// later version overtakes a replayed one: every patch is delivered.
	if len(versions) != patches {
		t.Errorf("%d update events delivered for %d patches, want every one", len(versions), patches)
	}
	statesMu.Lock()
	t.Logf("%d patches, %d update events delivered (%d missed while reconnecting, reported by %d gaps); "+
		"%d duplicates dropped; %d requests resent; %d connections; states %v; snapshot: %d objects, %d relists, %d duplicates dropped",
		patches, len(versions), patches-len(versions), gaps, s.Duplicates, s.Resent, s.Connections, states,
		sn.Len(), sn.Relists(), sn.Duplicates())
	statesMu.Unlock()
}
