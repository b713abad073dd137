package emulator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsbind/wsbind/local/emulator"
	"github.com/wsbind/wsbind/local/emulatortest"
)

// The load test's shape. Each connection sends a request every
// lcLoadInterval on average, one in flight: about 1000/8 = 125 requests
// a second, about 30 of them changes. Under -race a 2-core machine fans
// out about that many changes a second (at 250 requests a second the
// stream fell a minute behind), so this keeps the test's length near its
// load's. The point is many connections and exact delivery, not
// throughput (the benchmarks measure that).
const (
	lcLoadConns    = 1000
	lcLoadInterval = 8 * time.Second
	lcHotPerOwner  = 2                // questions each updater creates and updates
	lcMaxPKSubs    = 4                // per-pk subscriptions of a pk watcher
	lcLoadReply    = 60 * time.Second // longer than the gateway's 29 s integration timeout
	lcLoadDrain    = 3 * time.Minute  // for the last pushes after the load
)

// lcRole is what a connection of the load test does besides create,
// retrieve and list.
type lcRole int

const (
	lcPlain         lcRole = iota
	lcUpdater              // updates its own questions (one writer per question: no conflicts)
	lcPKWatcher            // subscribes to updates of other connections' questions
	lcCreateWatcher        // subscribes to every create, at some point of the run
)

func lcRoleOf(i int) lcRole {
	switch {
	case i%10 == 0:
		return lcUpdater
	case i%10 == 1:
		return lcPKWatcher
	case i%200 == 2:
		return lcCreateWatcher
	}
	return lcPlain
}

// lcChange is a change a reply confirmed: a create or an update. Its
// text is unique, so a push names the change it is for.
type lcChange struct {
	Action, PK, Text string
	Sent             time.Time
}

func (c lcChange) key() string { return c.Action + "\x00" + c.PK + "\x00" + c.Text }

// lcSub is a subscription a reply confirmed. PK is "" for all creates.
type lcSub struct {
	Action, PK string
	Replied    time.Time
}

func (s lcSub) matches(c lcChange) bool {
	return s.Action == c.Action && (s.PK == "" || s.PK == c.PK)
}

// lcConnLog is what one connection of the load test saw confirmed.
type lcConnLog struct {
	changes  []lcChange
	subs     []lcSub
	requests int
	statuses map[string]int // "action status" → count
	errs     []string
}

func (l *lcConnLog) errorf(format string, args ...any) {
	l.errs = append(l.errs, fmt.Sprintf(format, args...))
}

// lcLogs keeps the emulator's warnings and errors.
type lcLogs struct {
	mu      sync.Mutex
	records []string
	attrs   []slog.Attr
}

func (h *lcLogs) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *lcLogs) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s", a)
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, b.String())
	return nil
}

func (h *lcLogs) WithAttrs(as []slog.Attr) slog.Handler {
	return &lcLogsWith{h, as}
}

func (h *lcLogs) WithGroup(string) slog.Handler { return h }

// lcLogsWith is lcLogs with attributes of its own.
type lcLogsWith struct {
	base  *lcLogs
	attrs []slog.Attr
}

func (h *lcLogsWith) Enabled(ctx context.Context, l slog.Level) bool { return h.base.Enabled(ctx, l) }

func (h *lcLogsWith) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(h.attrs...)
	return h.base.Handle(ctx, r)
}

func (h *lcLogsWith) WithAttrs(as []slog.Attr) slog.Handler {
	return &lcLogsWith{h.base, append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *lcLogsWith) WithGroup(string) slog.Handler { return h }

func (h *lcLogs) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.records...)
}

// lcLoadDuration is the load's length: WSBIND_LOAD_DURATION, else 3 s
// with -short, else 30 s.
func lcLoadDuration(t *testing.T) time.Duration {
	if v := os.Getenv("WSBIND_LOAD_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("WSBIND_LOAD_DURATION=%q: want a positive duration", v)
		}
		return d
	}
	if testing.Short() {
		return 3 * time.Second
	}
	return 30 * time.Second
}

// TestEmulator_Load runs 1,000 WebSocket connections against one emulator,
// mixing create, retrieve, list, update and subscribe (to every create, and
// to the updates of given questions). Every request must get exactly one
// reply with the status its action calls for, every change made after a
// subscription's reply must reach that subscriber exactly once, no push may
// come twice or without a matching subscription, the emulator must log no
// warning or error, and it must serve on after the load.
func TestEmulator_Load(t *testing.T) {
	dur := lcLoadDuration(t)
	logs := &lcLogs{}
	// The warnings are kept for the test; every line goes on where
	// emulatortest sends it too.
	em := emulatortest.Start(t, func(c *emulator.Config) { c.Log = slog.New(slog.NewMultiHandler(logs, c.Log.Handler())) })

	began := time.Now()
	conns := lcDialAll(t, em, lcLoadConns, "c")
	t.Logf("%d connections open in %v", len(conns), time.Since(began).Round(time.Millisecond))
	logsOf := make([]*lcConnLog, len(conns))
	for i := range conns {
		logsOf[i] = &lcConnLog{statuses: map[string]int{}}
	}

	// The control connection watches every create from the start; its
	// last create, the sentinel, tells when the stream has been fanned out
	// up to the end of the load (one batch at a time, records in order).
	ctl := lcDialAll(t, em, 1, "ctl")[0]
	ctlLog := &lcConnLog{statuses: map[string]int{}}
	if r, _, err := ctl.do("subscribe", "", `{"action":"create"}`, lcLoadReply); err != nil || r.Status != 200 {
		t.Fatalf("control subscribe: %v %s", err, r.Raw)
	} else {
		ctlLog.subs = append(ctlLog.subs, lcSub{Action: "create", Replied: r.At})
	}

	// The updaters' questions, the ones pk watchers watch.
	owned := make([][]string, len(conns))
	var hot []string
	for i, c := range conns {
		if lcRoleOf(i) != lcUpdater {
			continue
		}
		for k := range lcHotPerOwner {
			text := fmt.Sprintf("hot %s.%d", c.name, k)
			r, sent, err := c.do("create", "", fmt.Sprintf(`{"question_text":%q}`, text), lcLoadReply)
			if err != nil || r.Status != 201 || lcID(r) == "" {
				t.Fatalf("setup create: %v %s", err, r.Raw)
			}
			logsOf[i].changes = append(logsOf[i].changes, lcChange{Action: "create", PK: lcID(r), Text: text, Sent: sent})
			owned[i] = append(owned[i], lcID(r))
			hot = append(hot, lcID(r))
		}
	}

	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { lcLoadConn(c, lcRoleOf(i), logsOf[i], owned[i], hot, start, dur) })
	}
	wg.Wait()
	elapsed := time.Since(start)

	// Replies.
	requests := 0
	statuses := map[string]int{}
	for _, l := range logsOf {
		requests += l.requests
		for k, n := range l.statuses {
			statuses[k] += n
		}
		for _, e := range l.errs {
			t.Error(e)
		}
	}
	t.Logf("%d requests in %v: %.0f requests/s over %d connections; replies: %v",
		requests, elapsed.Round(time.Millisecond), float64(requests)/elapsed.Seconds(), len(conns), statuses)
	if t.Failed() {
		t.FailNow()
	}

	// The sentinel: once its push is here, every earlier change has been
	// posted to its subscribers.
	r, sent, err := ctl.do("create", "", `{"question_text":"sentinel"}`, lcLoadReply)
	if err != nil || r.Status != 201 {
		t.Fatalf("sentinel create: %v %s", err, r.Raw)
	}
	sentinel := lcChange{Action: "create", PK: lcID(r), Text: "sentinel", Sent: sent}
	ctlLog.changes = append(ctlLog.changes, sentinel)
	deadline := time.Now().Add(lcLoadDrain)
	for !slicesContainsPush(ctl.pushesCopy(), sentinel) {
		if time.Now().After(deadline) {
			t.Fatalf("the sentinel's push did not arrive within %v of the load's end", lcLoadDrain)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the stream was fanned out %v after the load ended", time.Since(start.Add(elapsed)).Round(time.Millisecond))

	// Pushes: what each connection must get (changes sent after its
	// subscription's reply) and may get (changes of what it subscribed
	// to, sent earlier: the stream may still have been behind).
	allConns := append(append([]*lcConn(nil), conns...), ctl)
	allLogs := append(append([]*lcConnLog(nil), logsOf...), ctlLog)
	changes := map[string]lcChange{}
	byPK := map[string][]lcChange{}
	var creates []lcChange
	for _, l := range allLogs {
		for _, c := range l.changes {
			if _, dup := changes[c.key()]; dup {
				t.Fatalf("two changes with one text: %+v", c)
			}
			changes[c.key()] = c
			byPK[c.PK] = append(byPK[c.PK], c)
			if c.Action == "create" {
				creates = append(creates, c)
			}
		}
	}
	required := make([]map[string]bool, len(allConns))
	wantPushes := 0
	for i, l := range allLogs {
		required[i] = map[string]bool{}
		for _, s := range l.subs {
			candidates := creates
			if s.PK != "" {
				candidates = byPK[s.PK]
			}
			for _, c := range candidates {
				if s.matches(c) && c.Sent.After(s.Replied) {
					required[i][c.key()] = true
				}
			}
		}
		wantPushes += len(required[i])
	}
	// The sentinel's push was posted after every earlier one; the gateway
	// may still be writing those to their connections, briefly.
	missing := func() int {
		n := 0
		for i, c := range allConns {
			got := map[string]bool{}
			for _, p := range c.pushesCopy() {
				got[lcChange{Action: p.Action, PK: p.PK, Text: p.Text}.key()] = true
			}
			for k := range required[i] {
				if !got[k] {
					n++
				}
			}
		}
		return n
	}
	settle := time.Now().Add(30 * time.Second)
	for time.Now().Before(settle) && missing() > 0 {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // for a late duplicate

	gotPushes, optional := 0, 0
	var maxLead time.Duration // of an optional push: from its change's request to the subscription's reply
	for i, c := range allConns {
		count := map[string]int{}
		for _, p := range c.pushesCopy() {
			gotPushes++
			k := lcChange{Action: p.Action, PK: p.PK, Text: p.Text}.key()
			ch, ok := changes[k]
			if !ok {
				t.Errorf("%s: a push of no change made: %+v", c.name, p)
				continue
			}
			if count[k]++; count[k] == 2 {
				t.Errorf("%s: %s of %s (%q) pushed more than once", c.name, ch.Action, ch.PK, ch.Text)
			}
			subscribed := false
			for _, s := range allLogs[i].subs {
				subscribed = subscribed || s.matches(ch)
			}
			if !subscribed {
				t.Errorf("%s: a push of %s of %s, which it did not subscribe to", c.name, ch.Action, ch.PK)
			}
			if !required[i][k] && count[k] == 1 {
				optional++
				lead := time.Duration(1<<63 - 1)
				for _, s := range allLogs[i].subs {
					if s.matches(ch) {
						lead = min(lead, s.Replied.Sub(ch.Sent))
					}
				}
				maxLead = max(maxLead, lead)
			}
		}
		for k := range required[i] {
			if count[k] == 0 {
				ch := changes[k]
				t.Errorf("%s: no push of %s of %s (%q), sent %v after its subscription",
					c.name, ch.Action, ch.PK, ch.Text, ch.Sent.Sub(lcSubOf(allLogs[i].subs, ch).Replied))
			}
		}
		problems, closed := c.state()
		for _, p := range problems {
			t.Error(p)
		}
		if closed != nil {
			t.Errorf("%s: the connection closed: %v", c.name, closed)
		}
	}
	t.Logf("pushes: %d required, %d received (%d of changes requested before a subscription's reply, up to %v before)",
		wantPushes, gotPushes, optional, maxLead.Round(time.Millisecond))

	for _, rec := range logs.all() {
		t.Errorf("emulator log: %s", rec)
	}

	// The emulator serves on: an old connection and a new one.
	if r, _, err := conns[len(conns)-1].do("list", "", "", lcLoadReply); err != nil || r.Status != 200 {
		t.Errorf("list after the load: %v %s", err, r.Raw)
	}
	if r, _, err := lcDialAll(t, em, 1, "after")[0].do("list", "", "", lcLoadReply); err != nil || r.Status != 200 {
		t.Errorf("list on a new connection after the load: %v %s", err, r.Raw)
	}
	t.Logf("peak RSS (VmHWM) of the test process, emulator included: %s", lcPeakRSS())
}

func slicesContainsPush(ps []lcPush, c lcChange) bool {
	for _, p := range ps {
		if p.Action == c.Action && p.PK == c.PK && p.Text == c.Text {
			return true
		}
	}
	return false
}

// lcSubOf is the earliest subscription of subs that requires c.
func lcSubOf(subs []lcSub, c lcChange) lcSub {
	for _, s := range subs {
		if s.matches(c) && c.Sent.After(s.Replied) {
			return s
		}
	}
	return lcSub{}
}

// lcLoadConn is one connection's part of the load: a request every
// lcLoadInterval on average until dur has passed since start.
func lcLoadConn(c *lcConn, role lcRole, l *lcConnLog, owned, hot []string, start time.Time, dur time.Duration) {
	rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(len(c.name))*7919+uint64(rand.Uint32())))
	var mine []string // questions this connection created
	updates := 0
	subscribeAt := time.Duration(-1) // a create watcher subscribes at some point of the first half
	if role == lcCreateWatcher {
		subscribeAt = time.Duration(rng.Int64N(int64(dur/2) + 1))
	}
	pkSubs := 0
	next := start.Add(time.Duration(rng.Int64N(int64(lcLoadInterval))))
	for {
		if next.Sub(start) >= dur {
			return
		}
		time.Sleep(time.Until(next))
		next = next.Add(lcLoadInterval/2 + time.Duration(rng.Int64N(int64(lcLoadInterval))))

		var action, pk, data string
		want := 200
		var change *lcChange
		var sub *lcSub
		p := rng.IntN(100)
		switch {
		case subscribeAt >= 0 && time.Since(start) >= subscribeAt:
			subscribeAt = -1
			action, data = "subscribe", `{"action":"create"}`
			sub = &lcSub{Action: "create"}
		case role == lcPKWatcher && pkSubs < lcMaxPKSubs && (pkSubs == 0 || p < 15):
			pkSubs++
			action, pk, data = "subscribe", hot[rng.IntN(len(hot))], `{"action":"update"}`
			sub = &lcSub{Action: "update", PK: pk}
		case role == lcUpdater && p < 30:
			updates++
			action, pk = "update", owned[updates%len(owned)]
			text := fmt.Sprintf("update %s.%d", c.name, updates)
			data = fmt.Sprintf(`{"question_text":%q}`, text)
			change = &lcChange{Action: "update", PK: pk, Text: text}
		case p < 20 || (role == lcUpdater && p < 45):
			action = "create"
			text := fmt.Sprintf("create %s.%d", c.name, l.requests)
			data = fmt.Sprintf(`{"question_text":%q}`, text)
			want = 201
			change = &lcChange{Action: "create", Text: text}
		case p < 70:
			action = "retrieve"
			switch {
			case len(mine) > 0 && p%2 == 0:
				pk = mine[rng.IntN(len(mine))]
			case p%5 == 1:
				pk, want = "no-such-question-"+c.name, 404
			default:
				pk = hot[rng.IntN(len(hot))]
			}
		default:
			action, data = "list", `{"page":1}`
		}

		l.requests++
		r, sent, err := c.do(action, pk, data, lcLoadReply)
		if err != nil {
			l.errorf("%v", err)
			return
		}
		l.statuses[fmt.Sprintf("%s %d", action, r.Status)]++
		if r.Status != want {
			l.errorf("%s: %s %s: got status %d, want %d: %s", c.name, action, pk, r.Status, want, r.Raw)
			continue
		}
		var obj struct {
			ID   string `json:"id"`
			Text string `json:"question_text"`
		}
		switch action {
		case "create", "update":
			if err := json.Unmarshal(r.Data, &obj); err != nil || obj.ID == "" || obj.Text != change.Text || (pk != "" && obj.ID != pk) {
				l.errorf("%s: %s %s: got %s, want the object with question_text %q", c.name, action, pk, r.Raw, change.Text)
				continue
			}
			change.PK, change.Sent = obj.ID, sent
			l.changes = append(l.changes, *change)
			if action == "create" {
				mine = append(mine, obj.ID)
			}
		case "retrieve":
			if want == 200 && (json.Unmarshal(r.Data, &obj) != nil || obj.ID != pk) {
				l.errorf("%s: retrieve %s: got %s", c.name, pk, r.Raw)
			}
		case "list":
			var page []json.RawMessage
			if err := json.Unmarshal(r.Data, &page); err != nil || len(page) == 0 || len(page) > 25 {
				l.errorf("%s: list: got %s, want a page of 1 to 25 questions", c.name, r.Raw)
			}
		case "subscribe":
			sub.Replied = r.At
			l.subs = append(l.subs, *sub)
		}
	}
}
