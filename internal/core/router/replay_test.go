package router_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsbind/wsbind/bindings"
	"github.com/wsbind/wsbind/internal/core/identity"
	"github.com/wsbind/wsbind/internal/core/router"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/core/store/memory"
	"github.com/wsbind/wsbind/resource"
)

// replayRig is a router over a memory store whose changes go to the
// history at a controlled clock, and whose posts are recorded.
type replayRig struct {
	st    *memory.Store
	r     *router.Router
	mu    sync.Mutex
	now   time.Time
	posts map[string][]string // conn → frames
}

func newReplayRig(t testing.TB, h router.History) *replayRig {
	rig := &replayRig{st: memory.New(), now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), posts: map[string][]string{}}
	rig.r = router.New(router.Config{
		Registry: bindings.Registry(resource.Settings{}),
		Store:    rig.st,
		Now:      func() time.Time { rig.mu.Lock(); defer rig.mu.Unlock(); return rig.now },
		History:  h,
		Post: func(_ context.Context, frame []byte, conns []string) error {
			rig.mu.Lock()
			defer rig.mu.Unlock()
			for _, c := range conns {
				rig.posts[c] = append(rig.posts[c], string(frame))
			}
			return nil
		},
	})
	return rig
}

func (rig *replayRig) advance(d time.Duration) {
	rig.mu.Lock()
	rig.now = rig.now.Add(d)
	rig.mu.Unlock()
}

// send handles a frame and moves what the store changed into the history
// at the clock's time, as the fan-out does.
func (rig *replayRig) send(t testing.TB, user, frame string) map[string]any {
	t.Helper()
	out := rig.r.Handle(context.Background(), router.Conn{ID: "conn-" + user, User: identity.User{ID: user}}, []byte(frame))
	chs := rig.st.Changes()
	for i := range chs {
		chs[i].At = rig.now.UnixMilli()
	}
	if err := rig.st.Record(context.Background(), chs); err != nil {
		t.Fatal(err)
	}
	var f struct {
		Payload map[string]any `json:"payload"`
	}
	if err := json.Unmarshal(out, &f); err != nil {
		t.Fatalf("reply %s: %v", out, err)
	}
	return f.Payload
}

func (rig *replayRig) take(conn string) []map[string]any {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	var out []map[string]any
	for _, fr := range rig.posts[conn] {
		var f struct {
			Payload map[string]any `json:"payload"`
		}
		json.Unmarshal([]byte(fr), &f)
		out = append(out, f.Payload)
	}
	delete(rig.posts, conn)
	return out
}

// TestReplay: a subscribe with since replays what the subscription
// matched after the cursor (the caller's scope only, entering and leaving
// as live pushes do), marked replay, each with its cursor; a list reply
// carries the cursor a snapshot resumes from.
func TestReplay(t *testing.T) {
	rig := newReplayRig(t, router.History{Retention: time.Hour, Overlap: 0, Limit: 100})
	rig.send(t, "alice", `{"stream":"notes","payload":{"action":"create","data":{"text":"before"}}}`)
	rig.advance(time.Second)
	list := rig.send(t, "alice", `{"stream":"notes","payload":{"action":"list"}}`)
	cursor, _ := list["cursor"].(string)
	if _, ok := store.ParseCursor(cursor); !ok {
		t.Fatalf("list reply cursor %v", list["cursor"])
	}
	rig.advance(time.Second)
	a := rig.send(t, "alice", `{"stream":"notes","payload":{"action":"create","data":{"text":"after"}}}`)
	pk := a["data"].(map[string]any)["id"].(string)
	rig.send(t, "alice", `{"stream":"notes","payload":{"action":"patch","pk":"`+pk+`","data":{"text":"after, changed"}}}`)
	rig.send(t, "bob", `{"stream":"notes","payload":{"action":"create","data":{"text":"bob's"}}}`)
	rig.advance(time.Second)

	reply := rig.send(t, "alice", `{"stream":"notes","payload":{"action":"subscribe","data":{"action":"update","since":"`+cursor+`"}}}`)
	if reply["response_status"] != 200.0 || reply["data"].(map[string]any)["gap"] != nil {
		t.Fatalf("subscribe since: %v", reply)
	}
	got := rig.take("conn-alice")
	if len(got) != 1 {
		t.Fatalf("replayed %d pushes to alice, want 1 (the patch; the create is no update, bob's is not hers): %v", len(got), got)
	}
	p := got[0]
	if p["action"] != "update" || p["pk"] != pk || p["replay"] != true || p["version"] != 2.0 || !strings.HasPrefix(p["cursor"].(string), "1.") {
		t.Errorf("replayed push %v, want alice's update at version 2, replay, with a cursor", p)
	}
	if d := p["data"].(map[string]any); d["text"] != "after, changed" {
		t.Errorf("replayed data %v", d)
	}
	// The reply's cursor is where the replay read to (the patch), not the
	// time of the subscribe: a second later.
	if reply["cursor"] != p["cursor"] {
		t.Errorf("resumed subscribe's cursor %v, want the last replayed position %v", reply["cursor"], p["cursor"])
	}
	// Nothing after a cursor: the reply gives it back.
	if again := rig.send(t, "alice", `{"stream":"notes","payload":{"action":"subscribe","data":{"action":"update","since":"`+p["cursor"].(string)+`0"}}}`); again["cursor"] != p["cursor"].(string)+"0" {
		t.Errorf("subscribe since a cursor with nothing after it: cursor %v, want it back", again["cursor"])
	}
	rig.take("conn-alice")

	// A create subscription replays the create after the cursor, not the
	// one before it.
	rig.send(t, "alice", `{"stream":"notes","payload":{"action":"subscribe","data":{"action":"create","since":"`+cursor+`"}}}`)
	got = rig.take("conn-alice")
	if len(got) != 1 || got[0]["action"] != "create" || got[0]["pk"] != pk {
		t.Errorf("create replay: %v, want alice's one create after the cursor", got)
	}
	// Bob, from the same cursor, gets his own alone.
	rig.send(t, "bob", `{"stream":"notes","payload":{"action":"subscribe","data":{"action":"create","since":"`+cursor+`"}}}`)
	if got := rig.take("conn-bob"); len(got) != 1 || got[0]["data"].(map[string]any)["owner"] != "bob" {
		t.Errorf("bob's replay: %v, want his one note", got)
	}
}

// TestReplay_Gap: a cursor older than the retention, or a gap longer than
// the limit, answers gap and replays nothing; a since that is no cursor
// is a 400 naming since.
func TestReplay_Gap(t *testing.T) {
	rig := newReplayRig(t, router.History{Retention: time.Minute, Limit: 2})
	old := store.Cursor(rig.now.UnixMilli())
	for i := 0; i < 3; i++ {
		rig.send(t, "alice", `{"stream":"questions","payload":{"action":"create","data":{"question_text":"Q"}}}`)
	}
	reply := rig.send(t, "alice", `{"stream":"questions","payload":{"action":"subscribe","data":{"action":"create","since":"`+old+`"}}}`)
	if d := reply["data"].(map[string]any); d["gap"] != true || d["action"] != "create" {
		t.Errorf("3 changes past a limit of 2: %v, want gap", reply)
	}
	rig.advance(2 * time.Minute)
	reply = rig.send(t, "alice", `{"stream":"questions","payload":{"action":"subscribe","data":{"action":"update","since":"`+old+`"}}}`)
	if d := reply["data"].(map[string]any); d["gap"] != true {
		t.Errorf("a cursor past the retention: %v, want gap", reply)
	}
	if got := rig.take("conn-alice"); len(got) != 0 {
		t.Errorf("a gap replayed %d pushes", len(got))
	}
	for _, bad := range []string{`"yesterday"`, `12`, `"1."`, `"1.-5"`} {
		reply = rig.send(t, "alice", `{"stream":"questions","payload":{"action":"subscribe","data":{"action":"update","since":`+bad+`}}}`)
		b, _ := json.Marshal(reply["errors"])
		if reply["response_status"] != 400.0 || string(b) != `[{"since":["Not a valid cursor."]}]` {
			t.Errorf("since %s: %v", bad, reply)
		}
	}
}

// TestReplay_Filter: a filtered subscription's replay pushes what live
// pushes would have: an object entering the filter is a create, one
// leaving it a delete, one outside it nothing.
func TestReplay_Filter(t *testing.T) {
	rig := newReplayRig(t, router.History{Retention: time.Hour, Limit: 100})
	list := rig.send(t, "alice", `{"stream":"questions","payload":{"action":"list"}}`)
	cursor := list["cursor"].(string)
	rig.advance(time.Second)
	a := rig.send(t, "alice", `{"stream":"questions","payload":{"action":"create","data":{"question_text":"enters"}}}`)
	pa := a["data"].(map[string]any)["id"].(string)
	rig.send(t, "alice", `{"stream":"questions","payload":{"action":"create","data":{"question_text":"stays out"}}}`)
	rig.send(t, "alice", `{"stream":"questions","payload":{"action":"publish","pk":"`+pa+`"}}`)
	rig.advance(time.Second)
	rig.send(t, "alice", `{"stream":"questions","payload":{"action":"unpublish","pk":"`+pa+`"}}`)

	for _, tc := range []struct{ action, want string }{
		{"create", "create " + pa + " v2"},
		{"update", ""},
		{"delete", "delete " + pa + " v3"},
	} {
		rig.send(t, "bob", `{"stream":"questions","payload":{"action":"subscribe","data":{"action":"`+tc.action+`","filter":{"published":true},"since":"`+cursor+`"}}}`)
		var got []string
		for _, p := range rig.take("conn-bob") {
			got = append(got, p["action"].(string)+" "+p["pk"].(string)+" v"+strconv.Itoa(int(p["version"].(float64))))
		}
		if strings.Join(got, ", ") != tc.want {
			t.Errorf("%s subscription with a filter: replayed %q, want %q", tc.action, got, tc.want)
		}
	}
}

// TestReplay_Repeats: a change the fan-out recorded again (its pushes were
// slow) is replayed once, from its first position; an object deleted and
// made again under its pk, whose changes share pk, kind and version, is
// replayed each time.
func TestReplay_Repeats(t *testing.T) {
	rig := newReplayRig(t, router.History{Retention: time.Hour, Overlap: 0, Limit: 100})
	list := rig.send(t, "alice", `{"stream":"notes","payload":{"action":"list"}}`)
	cursor := list["cursor"].(string)
	rig.advance(time.Second)
	a := rig.send(t, "alice", `{"stream":"notes","payload":{"action":"create","data":{"text":"first"}}}`)
	pk := a["data"].(map[string]any)["id"].(string)
	ctx := context.Background()
	first, err := rig.st.Since(ctx, store.Part{Stream: "notes", Scope: "alice"}, 0, -1)
	if err != nil || len(first) != 1 {
		t.Fatalf("history: %v %v", first, err)
	}
	// Recorded again two seconds on, as the fan-out does while a change's
	// pushes are slow; then the same pk's object is made again (a second
	// create at version 1, with other data).
	again := first[0]
	again.At += 2000
	remade := first[0]
	remade.At += 3000
	remade.New = []byte(strings.Replace(string(remade.New), "first", "second", 1))
	if err := rig.st.Record(ctx, []store.Change{again, remade}); err != nil {
		t.Fatal(err)
	}
	rig.advance(5 * time.Second)
	rig.send(t, "alice", `{"stream":"notes","payload":{"action":"subscribe","data":{"action":"create","since":"`+cursor+`"}}}`)
	got := rig.take("conn-alice")
	var texts []string
	for _, p := range got {
		if p["pk"] != pk {
			t.Errorf("replayed %v, want only %s", p, pk)
		}
		texts = append(texts, p["data"].(map[string]any)["text"].(string))
	}
	if !slices.Equal(texts, []string{"first", "second"}) {
		t.Errorf("replayed creates of %s: %q, want the first once, then the second", pk, texts)
	}
}
