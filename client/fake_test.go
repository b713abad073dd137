package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fake is a small wsbind server for the client's tests of what the
// emulator does not do yet, the cursor wire being added to the server:
// cursors on pushes and list replies, subscribe with since (the replay,
// marked replay:true, before the reply; gap:true past the retained
// history). It also misbehaves on demand: drops a connection after a
// write, repeats pushes, answers "Token expired" or "in progress", stays
// silent.
type fake struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	seq      int      // the last change's position
	changes  []change // every change, oldest first
	retained int      // changes at or before this position are forgotten
	objects  map[string]map[string]*fobj
	conns    map[*fconn]struct{}
	keys     map[string]*fpayload // idempotency key → first reply
	nextID   int
	pageSize int
	requests []fpayload // every request received
	tokens   []string   // of every connection, in order

	// Knobs.
	refuse      bool            // handshakes answer 503
	noCursors   bool            // no cursor anywhere, since and after ignored: a server before them
	repeat      bool            // every live push is sent twice
	dropWrites  int             // the next N writes are applied, then their connection is cut instead of answered
	inProgress  int             // the next N writes with a key answer 409 in progress
	silent      bool            // requests are not answered
	expired     map[string]bool // requests on connections of these tokens answer 401 Token expired
	badCursors  bool            // every since answers 400
	listDelay   time.Duration   // before answering a list page
	onListPage1 func()          // called (unlocked) after page 1 is read
}

type change struct {
	seq     int
	stream  string
	action  string
	pk      string
	version int64
	data    json.RawMessage
}

type fobj struct {
	data    map[string]any
	version int64
}

type fconn struct {
	ws    *websocket.Conn
	token string
	subs  []fsub
}

type fsub struct{ stream, action, pk string }

type fpayload struct {
	Action         string          `json:"action"`
	PK             json.RawMessage `json:"pk,omitempty"`
	Data           json.RawMessage `json:"data"`
	RequestID      json.RawMessage `json:"request_id"`
	IfVersion      *int64          `json:"if_version,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	// replies
	Errors  json.RawMessage `json:"errors,omitempty"`
	Status  int             `json:"response_status,omitempty"`
	Version int64           `json:"version,omitempty"`
	Cursor  string          `json:"cursor,omitempty"`
	Model   string          `json:"model,omitempty"`
	Replay  bool            `json:"replay,omitempty"`
}

func newFake(t testing.TB) *fake {
	f := &fake{
		t:        t,
		objects:  map[string]map[string]*fobj{},
		conns:    map[*fconn]struct{}{},
		keys:     map[string]*fpayload{},
		pageSize: 25,
		expired:  map[string]bool{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.handle))
	t.Cleanup(func() {
		f.kill()
		f.srv.Close()
	})
	return f
}

func (f *fake) url() string { return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/" }

func (f *fake) set(fn func(f *fake)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fake) handle(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	refuse := f.refuse
	f.mu.Unlock()
	if refuse {
		http.Error(w, "refused", http.StatusServiceUnavailable)
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(1 << 20)
	fc := &fconn{ws: ws, token: r.URL.Query().Get("token")}
	f.mu.Lock()
	f.conns[fc] = struct{}{}
	f.tokens = append(f.tokens, fc.token)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.conns, fc)
		f.mu.Unlock()
		ws.CloseNow()
	}()
	for {
		_, b, err := ws.Read(context.Background())
		if err != nil {
			return
		}
		f.serve(fc, b)
	}
}

// kill cuts every connection, as API Gateway does at 2 hours.
func (f *fake) kill() {
	f.mu.Lock()
	conns := make([]*fconn, 0, len(f.conns))
	for fc := range f.conns {
		conns = append(conns, fc)
	}
	f.mu.Unlock()
	for _, fc := range conns {
		fc.ws.CloseNow()
	}
}

// send writes one frame; f.mu is held, so that frames to a connection
// keep the order of the changes.
func (f *fake) send(fc *fconn, stream string, p *fpayload) {
	b, err := json.Marshal(map[string]any{"stream": stream, "payload": p})
	if err != nil {
		f.t.Errorf("fake: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = fc.ws.Write(ctx, websocket.MessageText, b)
}

func (f *fake) cursor(seq int) string {
	if f.noCursors {
		return ""
	}
	return "c" + strconv.Itoa(seq)
}

// commit records a change and pushes it to the subscribers. f.mu is held.
func (f *fake) commit(stream, action, pk string, version int64, data map[string]any) {
	f.seq++
	raw, _ := json.Marshal(data)
	ch := change{seq: f.seq, stream: stream, action: action, pk: pk, version: version, data: raw}
	f.changes = append(f.changes, ch)
	for fc := range f.conns {
		if !fc.wants(ch) {
			continue
		}
		p := f.push(ch, false)
		f.send(fc, stream, p)
		if f.repeat {
			f.send(fc, stream, p)
		}
	}
}

func (fc *fconn) wants(ch change) bool {
	for _, s := range fc.subs {
		if s.stream == ch.stream && s.action == ch.action && (s.pk == "" || s.pk == ch.pk) {
			return true
		}
	}
	return false
}

func (f *fake) push(ch change, replay bool) *fpayload {
	pk, _ := json.Marshal(ch.pk)
	return &fpayload{Action: ch.action, Data: ch.data, PK: pk, Version: ch.version,
		Model: "test." + ch.stream, Cursor: f.cursor(ch.seq), Replay: replay}
}

// write changes the object as a client's write would, from the test.
func (f *fake) write(stream, action, pk string, fields map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, _, err := f.apply(stream, action, pk, fields); err != nil {
		f.t.Fatalf("fake write %s %s: %v", action, pk, err)
	}
}

// apply makes a write. f.mu is held.
func (f *fake) apply(stream, action, pk string, fields map[string]any) (*fobj, string, error) {
	objs := f.objects[stream]
	if objs == nil {
		objs = map[string]*fobj{}
		f.objects[stream] = objs
	}
	switch action {
	case "create":
		f.nextID++
		if pk == "" {
			pk = fmt.Sprintf("id%04d", f.nextID)
		}
		o := &fobj{data: map[string]any{"id": pk}, version: 1}
		for k, v := range fields {
			if k != "id" {
				o.data[k] = v
			}
		}
		objs[pk] = o
		f.commit(stream, "create", pk, o.version, o.data)
		return o, pk, nil
	case "update", "patch":
		o := objs[pk]
		if o == nil {
			return nil, pk, errNotFound
		}
		nd := map[string]any{}
		for k, v := range o.data {
			nd[k] = v
		}
		for k, v := range fields {
			if k != "id" {
				nd[k] = v
			}
		}
		o.data = nd
		o.version++
		f.commit(stream, "update", pk, o.version, o.data)
		return o, pk, nil
	case "delete":
		o := objs[pk]
		if o == nil {
			return nil, pk, errNotFound
		}
		delete(objs, pk)
		o.version++
		f.commit(stream, "delete", pk, o.version, o.data)
		return &fobj{data: map[string]any{}, version: o.version}, pk, nil
	}
	return nil, pk, fmt.Errorf("no action %s", action)
}

var errNotFound = fmt.Errorf("not found")

// truth is the objects of stream as the fake holds them: pk → version.
func (f *fake) truth(stream string) map[string]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int64{}
	for pk, o := range f.objects[stream] {
		out[pk] = o.version
	}
	return out
}

func (f *fake) requestsOf(action string) []fpayload {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fpayload
	for _, p := range f.requests {
		if p.Action == action {
			out = append(out, p)
		}
	}
	return out
}

func reply(req *fpayload, status int, data any, errs any) *fpayload {
	raw, _ := json.Marshal(data)
	if errs == nil {
		errs = []string{}
	}
	e, _ := json.Marshal(errs)
	return &fpayload{Action: req.Action, Data: raw, Errors: e, Status: status, RequestID: req.RequestID}
}

// serve answers one request.
func (f *fake) serve(fc *fconn, b []byte) {
	var frame struct {
		Stream  string   `json:"stream"`
		Payload fpayload `json:"payload"`
	}
	if err := json.Unmarshal(b, &frame); err != nil {
		f.t.Errorf("fake: a request that is not JSON: %s", b)
		return
	}
	stream, req := frame.Stream, &frame.Payload
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, *req)
	if f.silent {
		return
	}
	if f.expired[fc.token] {
		f.send(fc, stream, reply(req, 401, nil, []string{"Token expired"}))
		return
	}
	var pk string
	_ = json.Unmarshal(req.PK, &pk)
	var fields map[string]any
	_ = json.Unmarshal(req.Data, &fields)
	switch req.Action {
	case "create", "update", "patch", "delete":
		if req.IdempotencyKey != "" {
			if f.inProgress > 0 {
				f.inProgress--
				f.send(fc, stream, reply(req, 409, nil, []string{msgInProgress}))
				return
			}
			if first := f.keys[req.IdempotencyKey]; first != nil {
				again := *first
				again.RequestID = req.RequestID
				f.send(fc, stream, &again)
				return
			}
		}
		var rep *fpayload
		if o := f.objects[stream][pk]; o != nil && req.IfVersion != nil && *req.IfVersion != o.version {
			rep = reply(req, 409, nil, []string{fmt.Sprintf("Version conflict: the object is at version %d.", o.version)})
		} else if o, _, err := f.apply(stream, req.Action, pk, fields); err != nil {
			rep = reply(req, 404, nil, []string{"Not found."})
		} else {
			status := 200
			if req.Action == "create" {
				status = 201
			}
			rep = reply(req, status, o.data, nil)
			rep.Version = o.version
		}
		if req.IdempotencyKey != "" {
			f.keys[req.IdempotencyKey] = rep
		}
		if f.dropWrites > 0 {
			f.dropWrites--
			fc.ws.CloseNow()
			return
		}
		f.send(fc, stream, rep)
	case "retrieve":
		if o := f.objects[stream][pk]; o != nil {
			rep := reply(req, 200, o.data, nil)
			rep.Version = o.version
			f.send(fc, stream, rep)
		} else {
			f.send(fc, stream, reply(req, 404, nil, []string{"Not found."}))
		}
	case "list":
		page := 1
		if p, ok := fields["page"].(float64); ok {
			page = int(p)
		}
		cursor := f.cursor(f.seq)
		pks := make([]string, 0, len(f.objects[stream]))
		for pk := range f.objects[stream] {
			pks = append(pks, pk)
		}
		slices.Sort(pks)
		lo := (page - 1) * f.pageSize
		if after, ok := fields["after"].(string); ok && !f.noCursors {
			// A keyset page (a server without cursors predates them and
			// ignores after).
			lo, _ = slices.BinarySearch(pks, after+"\x00")
			page = 1
		}
		if page < 1 || (page > 1 && lo >= len(pks)) {
			f.send(fc, stream, reply(req, 404, nil, []string{"Invalid page."}))
			return
		}
		items := []map[string]any{}
		for _, pk := range pks[lo:min(lo+f.pageSize, len(pks))] {
			items = append(items, f.objects[stream][pk].data)
		}
		rep := reply(req, 200, items, nil)
		rep.Cursor = cursor
		if d := f.listDelay; d > 0 {
			f.mu.Unlock()
			time.Sleep(d)
			f.mu.Lock()
		}
		f.send(fc, stream, rep)
		if page == 1 && f.onListPage1 != nil {
			hook := f.onListPage1
			f.mu.Unlock()
			hook()
			f.mu.Lock()
		}
	case "subscribe", "unsubscribe":
		var d struct {
			Action string `json:"action"`
			Since  string `json:"since"`
			PK     string `json:"pk"`
		}
		_ = json.Unmarshal(req.Data, &d)
		if pk == "" {
			pk = d.PK
		}
		s := fsub{stream: stream, action: d.Action, pk: pk}
		if req.Action == "unsubscribe" {
			fc.subs = slices.DeleteFunc(fc.subs, func(x fsub) bool { return x == s })
			f.send(fc, stream, reply(req, 200, map[string]string{"action": d.Action}, nil))
			return
		}
		from := -1
		if d.Since != "" && !f.noCursors {
			n, err := strconv.Atoi(strings.TrimPrefix(d.Since, "c"))
			if f.badCursors || err != nil || !strings.HasPrefix(d.Since, "c") {
				f.send(fc, stream, reply(req, 400, nil, []map[string][]string{{"since": {"Not a valid cursor."}}}))
				return
			}
			from = n
		}
		if !slices.Contains(fc.subs, s) {
			fc.subs = append(fc.subs, s)
		}
		if from >= 0 && from < f.retained {
			f.send(fc, stream, reply(req, 200, map[string]any{"action": d.Action, "gap": true}, nil))
			return
		}
		if from >= 0 {
			for _, ch := range f.changes {
				if ch.seq > from && ch.stream == stream && ch.action == d.Action && (pk == "" || ch.pk == pk) {
					f.send(fc, stream, f.push(ch, true))
				}
			}
		}
		f.send(fc, stream, reply(req, 200, map[string]string{"action": d.Action}, nil))
	default:
		f.send(fc, stream, reply(req, 400, nil, []string{"Invalid Action"}))
	}
}
