package protocoltest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The private-data matrix: users alice (two connections), bob, root (role
// admin) and an anonymous connection, times every action of the notes
// binding (private notes: each user sees their own, an admin reads all
// and writes only their own), on their own and on others' notes, with the
// pushes every connection receives after every change.
//
// Its expectations come from a model written here, independently of the
// code under test: a note is visible to a user who owns it or holds the
// admin role; writes are the owner's; anonymous connections are refused.
// PlayMatrix checks every reply and every push against the model, checks
// that no frame a connection receives carries a byte of a note it may not
// see (its id or its text), and returns the transcript: the router writes
// it as a golden file, the emulator plays it over real WebSockets.

// The matrix's connections.
var (
	MatrixAlice  = Conn{ID: "conn-alice", User: "alice"}
	MatrixAlice2 = Conn{ID: "conn-alice-2", User: "alice"}
	MatrixBob    = Conn{ID: "conn-bob", User: "bob"}
	MatrixRoot   = Conn{ID: "conn-root", User: "root", Roles: []string{"admin"}}
	MatrixAnon   = Conn{ID: "conn-anon"}
)

// MatrixConns are the matrix's connections, in the order they act.
var MatrixConns = []Conn{MatrixAlice, MatrixAlice2, MatrixBob, MatrixRoot, MatrixAnon}

// MatrixPlayer is a system the matrix runs against.
type MatrixPlayer interface {
	// Send delivers a frame from conn and returns its reply.
	Send(conn Conn, frame []byte) []byte
	// Pushes returns the pushes delivered since the last call, once the
	// want pushes (connection id → count) have arrived or can no longer
	// be expected, for each connection in arrival order.
	Pushes(want map[string]int) map[string][][]byte
}

// mNote is the model of one note.
type mNote struct {
	name, owner, text string
	pinned, exists    bool
}

// mSub is the model of one subscription.
type mSub struct {
	action string // create, update or delete
	note   string // "" for every note
	pinned *bool  // the filter {"pinned": v}, nil for none
}

// matrix is the model, and the state of one play.
type matrix struct {
	t     *testing.T
	p     MatrixPlayer
	out   bytes.Buffer
	notes map[string]*mNote
	order []string // notes by creation
	ids   map[string]string
	subs  map[string][]mSub // by connection id
	step  int
	// pending is the name of the note a create in flight makes.
	pending string
}

func (m *matrix) admin(c Conn) bool { return slices.Contains(c.Roles, "admin") }

func (m *matrix) visible(c Conn, n *mNote) bool {
	return n != nil && n.exists && c.User != "" && (n.owner == c.User || m.admin(c))
}

// PlayMatrix runs the matrix against p, failing t on any difference from
// the model, and returns the transcript.
func PlayMatrix(t *testing.T, p MatrixPlayer) []byte {
	m := &matrix{t: t, p: p, notes: map[string]*mNote{}, ids: map[string]string{}, subs: map[string][]mSub{}}
	all := []Conn{MatrixAlice, MatrixBob, MatrixRoot, MatrixAnon}
	yes := true

	m.comment("Everyone subscribes to every create, update and delete; anonymous is refused.")
	for _, c := range all {
		for _, a := range []string{"create", "update", "delete"} {
			m.subscribe(c, mSub{action: a}, false)
		}
	}
	m.comment("alice's second tab follows only pinned notes: enter is a create, leave a delete.")
	for _, a := range []string{"create", "update", "delete"} {
		m.subscribe(MatrixAlice2, mSub{action: a, pinned: &yes}, false)
	}
	m.comment("A filter naming no field, holding a non-scalar value, or not an object is refused.")
	m.raw(MatrixAlice, "subscribe", "", `{"action":"update","filter":{"colour":"red"}}`, 400)
	m.raw(MatrixAlice, "subscribe", "", `{"action":"update","filter":{"pinned":[true]}}`, 400)
	m.raw(MatrixAlice, "subscribe", "", `{"action":"update","filter":"pinned"}`, 400)

	m.comment("Each user creates notes; anonymous cannot.")
	m.create(MatrixAlice, "A1")
	m.create(MatrixAlice, "A2")
	m.create(MatrixBob, "B1")
	m.create(MatrixRoot, "R1")
	m.create(MatrixAnon, "X1")

	m.comment("Subscribing to another user's note by pk answers 200 and stays silent.")
	m.subscribe(MatrixBob, mSub{action: "update", note: "A1"}, false)
	m.subscribe(MatrixBob, mSub{action: "delete", note: "A2"}, false)
	m.subscribe(MatrixAnon, mSub{action: "update", note: "A1"}, false)

	m.comment("Every user reads alice's, bob's and root's notes: their own 200, others' 404, all 200 for the admin.")
	for _, c := range all {
		for _, n := range []string{"A1", "B1", "R1"} {
			m.detail(c, "retrieve", n, "")
		}
	}
	m.comment("list and the count list action show each user their own notes; an admin all.")
	for _, c := range all {
		m.list(c)
		m.count(c)
	}
	m.comment("Writes on others' notes: 404 outside the scope, 401 for the admin, who reads but does not write them.")
	for _, c := range all {
		for _, n := range []string{"A1", "B1", "R1"} {
			m.detail(c, "patch", n, `{"text":"`+c.User+`-edit"}`)
			m.detail(c, "update", n, `{"text":"`+c.User+`-full"}`)
		}
	}
	m.comment("The custom detail action pin: the owner's pin enters alice's pinned-only tab as a create.")
	for _, c := range all {
		m.detail(c, "pin", "A1", "")
	}
	m.detail(MatrixBob, "pin", "B1", "")
	m.comment("Unpinning leaves the pinned-only view: a delete to alice's second tab.")
	m.detail(MatrixAlice, "patch", "A1", `{"pinned":false}`)
	m.comment("Unsubscribe removes exactly that subscription: alice's all-updates goes, her tab's filtered one stays.")
	m.subscribe(MatrixAlice, mSub{action: "update"}, true)
	m.subscribe(MatrixAlice, mSub{action: "update"}, true)
	m.subscribe(MatrixAnon, mSub{action: "update"}, true)
	m.detail(MatrixAlice, "patch", "A1", `{"pinned":true}`)
	m.detail(MatrixAlice, "patch", "A1", `{"text":"alice-secret-A1-again"}`)
	m.comment("Deletes: others' notes are 404 (401 for the admin); the owner's delete reaches who could see it.")
	for _, c := range all {
		for _, n := range []string{"A2", "B1", "R1"} {
			if m.notes[n].owner != c.User {
				m.detail(c, "delete", n, "")
			}
		}
	}
	m.detail(MatrixAlice, "delete", "A2", "")
	m.detail(MatrixBob, "delete", "B1", "")
	m.detail(MatrixAlice, "delete", "A1", "")
	m.comment("A deleted note is gone for everyone.")
	for _, c := range all {
		m.detail(c, "retrieve", "A1", "")
		m.list(c)
	}
	return m.out.Bytes()
}

func (m *matrix) comment(s string) { fmt.Fprintf(&m.out, "# %s\n", s) }

// frame writes a request with a request id that numbers the step.
func (m *matrix) frame(action, note, data string) string {
	m.step++
	var b strings.Builder
	fmt.Fprintf(&b, `{"stream":"notes","payload":{"action":%q`, action)
	if note != "" {
		id, ok := m.ids[note]
		if !ok {
			id = "missing-" + note
		}
		fmt.Fprintf(&b, `,"pk":%q`, id)
	}
	if data != "" {
		fmt.Fprintf(&b, `,"data":%s`, data)
	}
	fmt.Fprintf(&b, `,"request_id":%d}}`, m.step)
	return b.String()
}

// reply is the part of a reply the matrix reads.
type reply struct {
	Stream  string `json:"stream"`
	Payload struct {
		Action    string          `json:"action"`
		Data      json.RawMessage `json:"data"`
		Status    int             `json:"response_status"`
		RequestID json.RawMessage `json:"request_id"`
		PK        string          `json:"pk"`
	} `json:"payload"`
}

// send sends a frame, checks its status, and settles the pushes the model
// expects of it.
func (m *matrix) send(c Conn, frame string, want int, change func() map[string]string) reply {
	m.t.Helper()
	fmt.Fprintf(&m.out, "> %s %s %s\n", c.ID, c.label(), m.redact(frame))
	raw := m.p.Send(c, []byte(frame))
	m.checkLeaks(c, raw)
	var r reply
	if err := json.Unmarshal(raw, &r); err != nil {
		m.t.Fatalf("step %d: reply is not JSON: %v: %s", m.step, err, raw)
	}
	if r.Payload.Status != want {
		m.t.Errorf("step %d: %s %s: status %d, want %d: %s", m.step, c.ID, frame, r.Payload.Status, want, raw)
	}
	if m.pending != "" && r.Payload.Status == 201 {
		var obj struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(r.Payload.Data, &obj); err != nil || obj.ID == "" {
			m.t.Fatalf("step %d: create %s: no id in %s", m.step, m.pending, r.Payload.Data)
		}
		m.ids[m.pending] = obj.ID
	}
	m.pending = ""
	fmt.Fprintf(&m.out, "< %s\n", m.redact(string(raw)))
	var pushes map[string]string
	if change != nil && r.Payload.Status == want && want < 300 {
		pushes = change()
	}
	m.settle(pushes)
	return r
}

// settle collects the pushes of a step and compares them with the
// model's: connection id → "action note".
func (m *matrix) settle(want map[string]string) {
	m.t.Helper()
	counts := map[string]int{}
	for c := range want {
		counts[c] = 1
	}
	got := m.p.Pushes(counts)
	conns := make([]string, 0, len(got)+len(want))
	for c := range got {
		conns = append(conns, c)
	}
	for c := range want {
		if _, ok := got[c]; !ok {
			conns = append(conns, c)
		}
	}
	sort.Strings(conns)
	for _, id := range conns {
		frames := got[id]
		conn := m.conn(id)
		var kinds []string
		for _, f := range frames {
			fmt.Fprintf(&m.out, "~ %s %s\n", id, m.redact(string(f)))
			m.checkLeaks(conn, f)
			var r reply
			if err := json.Unmarshal(f, &r); err != nil {
				m.t.Fatalf("step %d: push to %s is not JSON: %s", m.step, id, f)
			}
			kinds = append(kinds, r.Payload.Action+" "+m.name(r.Payload.PK))
		}
		var wantKinds []string
		if w, ok := want[id]; ok {
			wantKinds = []string{w}
		}
		if !slices.Equal(kinds, wantKinds) {
			m.t.Errorf("step %d: pushes to %s: got %q, want %q", m.step, id, kinds, wantKinds)
		}
	}
}

func (m *matrix) conn(id string) Conn {
	for _, c := range MatrixConns {
		if c.ID == id {
			return c
		}
	}
	m.t.Fatalf("push to unknown connection %s", id)
	return Conn{}
}

// name is the note an id names, or the id.
func (m *matrix) name(id string) string {
	for n, v := range m.ids {
		if v == id {
			return n
		}
	}
	return id
}

// redact writes note ids as {name}, so that transcripts do not depend on
// the ids a system generates.
func (m *matrix) redact(s string) string {
	for n, id := range m.ids {
		s = strings.ReplaceAll(s, id, "{"+n+"}")
	}
	return s
}

// checkLeaks fails if a frame received by c carries the id or the text of
// a note c may not see.
func (m *matrix) checkLeaks(c Conn, frame []byte) {
	m.t.Helper()
	for _, n := range m.notes {
		if n.owner == c.User || m.admin(c) {
			continue
		}
		if id := m.ids[n.name]; id != "" && bytes.Contains(frame, []byte(id)) {
			m.t.Errorf("step %d: LEAK: %s received the id of %s's note %s: %s", m.step, c.ID, n.owner, n.name, frame)
		}
		if bytes.Contains(frame, []byte("secret-"+n.name)) {
			m.t.Errorf("step %d: LEAK: %s received the text of %s's note %s: %s", m.step, c.ID, n.owner, n.name, frame)
		}
	}
}

// create makes a note named name for c.
func (m *matrix) create(c Conn, name string) {
	m.t.Helper()
	text := c.User + "-secret-" + name
	want := 201
	if c.User == "" {
		want = 401
	}
	m.pending = name
	r := m.send(c, m.frame("create", "", `{"text":"`+text+`"}`), want, func() map[string]string {
		n := &mNote{name: name, owner: c.User, text: text, exists: true}
		m.notes[name] = n
		m.order = append(m.order, name)
		return m.change(nil, n, name)
	})
	if r.Payload.Status == 201 {
		var obj struct {
			Owner string `json:"owner"`
		}
		if err := json.Unmarshal(r.Payload.Data, &obj); err != nil || obj.Owner != c.User {
			m.t.Errorf("create %s: owner %q, want %q", name, obj.Owner, c.User)
		}
	}
}

// detail runs a detail action of c on note name, as the model says.
func (m *matrix) detail(c Conn, action, name, data string) {
	m.t.Helper()
	n := m.notes[name]
	want := 200
	switch {
	case c.User == "":
		want = 401
	case !m.visible(c, n):
		want = 404
	case action != "retrieve" && n.owner != c.User:
		want = 401
	}
	var change func() map[string]string
	if action != "retrieve" {
		change = func() map[string]string {
			before := *n
			switch action {
			case "delete":
				n.exists = false
				return m.change(&before, nil, name)
			case "pin":
				n.pinned = true
			case "patch", "update":
				var d struct {
					Text   *string `json:"text"`
					Pinned *bool   `json:"pinned"`
				}
				if err := json.Unmarshal([]byte(data), &d); err != nil {
					m.t.Fatal(err)
				}
				if d.Text != nil {
					n.text = *d.Text
				}
				if d.Pinned != nil {
					n.pinned = *d.Pinned
				} else if action == "update" {
					n.pinned = false // update is full: the default applies
				}
			}
			return m.change(&before, n, name)
		}
	}
	r := m.send(c, m.frame(action, name, data), want, change)
	if r.Payload.Status == 200 && action != "delete" {
		var obj struct {
			ID     string `json:"id"`
			Owner  string `json:"owner"`
			Text   string `json:"text"`
			Pinned bool   `json:"pinned"`
		}
		if err := json.Unmarshal(r.Payload.Data, &obj); err != nil {
			m.t.Fatalf("step %d: %s: %v: %s", m.step, action, err, r.Payload.Data)
		}
		if obj.ID != m.ids[name] || obj.Owner != n.owner || obj.Text != n.text || obj.Pinned != n.pinned {
			m.t.Errorf("step %d: %s %s: got %+v, want owner %s, text %q, pinned %v", m.step, action, name, obj, n.owner, n.text, n.pinned)
		}
	}
}

// raw sends any frame of c and expects a status and no pushes.
func (m *matrix) raw(c Conn, action, name, data string, want int) {
	m.t.Helper()
	m.send(c, m.frame(action, name, data), want, nil)
}

// list checks that c's list holds exactly the notes c may see, in
// creation order.
func (m *matrix) list(c Conn) {
	m.t.Helper()
	want := 200
	if c.User == "" {
		want = 401
	}
	r := m.send(c, m.frame("list", "", ""), want, nil)
	if r.Payload.Status != 200 {
		return
	}
	var objs []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(r.Payload.Data, &objs); err != nil {
		m.t.Fatalf("step %d: list: %v: %s", m.step, err, r.Payload.Data)
	}
	var got, wantNames []string
	for _, o := range objs {
		got = append(got, m.name(o.ID))
	}
	for _, name := range m.order {
		if m.visible(c, m.notes[name]) {
			wantNames = append(wantNames, name)
		}
	}
	if !slices.Equal(got, wantNames) {
		m.t.Errorf("step %d: %s's list: got %q, want %q", m.step, c.ID, got, wantNames)
	}
}

// count checks the count list action.
func (m *matrix) count(c Conn) {
	m.t.Helper()
	want := 200
	if c.User == "" {
		want = 401
	}
	r := m.send(c, m.frame("count", "", ""), want, nil)
	if r.Payload.Status != 200 {
		return
	}
	n := 0
	for _, note := range m.notes {
		if m.visible(c, note) {
			n++
		}
	}
	if got, want := string(r.Payload.Data), fmt.Sprintf(`{"count":%d}`, n); got != want {
		m.t.Errorf("step %d: %s's count: got %s, want %s", m.step, c.ID, got, want)
	}
}

// subscribe subscribes c (or unsubscribes it).
func (m *matrix) subscribe(c Conn, s mSub, remove bool) {
	m.t.Helper()
	data := `{"action":"` + s.action + `"`
	if s.pinned != nil {
		data += fmt.Sprintf(`,"filter":{"pinned":%v}`, *s.pinned)
	}
	data += "}"
	action := "subscribe"
	if remove {
		action = "unsubscribe"
	}
	want := 200
	if c.User == "" {
		want = 401
	}
	r := m.send(c, m.frame(action, s.note, data), want, nil)
	if r.Payload.Status != 200 {
		return
	}
	if got := string(r.Payload.Data); got != `{"action":"`+s.action+`"}` {
		m.t.Errorf("step %d: %s: data %s", m.step, action, got)
	}
	subs := m.subs[c.ID]
	i := slices.IndexFunc(subs, func(x mSub) bool {
		return x.action == s.action && x.note == s.note && (x.pinned == nil) == (s.pinned == nil) && (x.pinned == nil || *x.pinned == *s.pinned)
	})
	switch {
	case remove && i >= 0:
		m.subs[c.ID] = slices.Delete(subs, i, i+1)
	case !remove && i < 0:
		m.subs[c.ID] = append(subs, s)
	}
}

// change is the model of fan-out: for each connection, the push it gets
// for a change of note name from before to after (nil: absent), as
// "action name". Each subscription compares what it could see before and
// after; a connection gets one push, update over create over delete.
func (m *matrix) change(before, after *mNote, name string) map[string]string {
	rank := map[string]int{"delete": 1, "create": 2, "update": 3}
	out := map[string]string{}
	for _, c := range MatrixConns {
		best := ""
		for _, s := range m.subs[c.ID] {
			if s.note != "" && s.note != name {
				continue
			}
			sees := func(n *mNote) bool {
				return n != nil && m.visible(c, n) && (s.pinned == nil || n.pinned == *s.pinned)
			}
			var got string
			switch b, a := sees(before), sees(after); {
			case b && a && s.action == "update":
				got = "update"
			case !b && a && s.action == "create":
				got = "create"
			case b && !a && s.action == "delete":
				got = "delete"
			}
			if got != "" && rank[got] > rank[best] {
				best = got
			}
		}
		if best != "" {
			out[c.ID] = best + " " + name
		}
	}
	return out
}
