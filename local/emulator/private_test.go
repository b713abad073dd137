package emulator_test

// The private-data authorization matrix (internal/testkit/protocoltest's
// PlayMatrix: alice, bob, an admin and anonymous, times every action of
// the private notes binding, with every push) over real WebSockets
// against the emulator: real tokens through the real authorizer, the wasm
// guests, the emulator's DynamoDB and its change stream.

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsbind/wsbind/internal/testkit/protocoltest"
	"github.com/wsbind/wsbind/local/emulator"
)

// rawConn is one WebSocket connection that keeps every frame it reads.
type rawConn struct {
	c      *websocket.Conn
	mu     sync.Mutex
	frames [][]byte
	more   chan struct{}
	err    error
}

func (rc *rawConn) read() {
	for {
		_, b, err := rc.c.Read(context.Background())
		rc.mu.Lock()
		if err != nil {
			rc.err = err
		} else {
			rc.frames = append(rc.frames, b)
		}
		rc.mu.Unlock()
		select {
		case rc.more <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// take removes and returns the first frame that ok accepts, waiting up to
// d for it.
func (rc *rawConn) take(d time.Duration, ok func([]byte) bool) ([]byte, bool) {
	deadline := time.After(d)
	for {
		rc.mu.Lock()
		for i, f := range rc.frames {
			if ok(f) {
				rc.frames = append(rc.frames[:i:i], rc.frames[i+1:]...)
				rc.mu.Unlock()
				return f, true
			}
		}
		failed := rc.err != nil
		rc.mu.Unlock()
		if failed {
			return nil, false
		}
		select {
		case <-rc.more:
		case <-deadline:
			return nil, false
		}
	}
}

// matrixSettle is how long each step waits for pushes that must not come.
// One that comes later still fails the step it arrives in.
const matrixSettle = 150 * time.Millisecond

func isReply(f []byte) bool { return bytes.Contains(f, []byte(`"response_status":`)) }

// emulatorMatrix plays the matrix's connections over WebSockets.
type emulatorMatrix struct {
	t     *testing.T
	conns map[string]*rawConn
}

func (p *emulatorMatrix) Send(c protocoltest.Conn, frame []byte) []byte {
	p.t.Helper()
	rc := p.conns[c.ID]
	var req struct {
		Payload struct {
			RequestID json.RawMessage `json:"request_id"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(frame, &req); err != nil {
		p.t.Fatal(err)
	}
	if err := rc.c.Write(context.Background(), websocket.MessageText, frame); err != nil {
		p.t.Fatalf("%s: write: %v", c.ID, err)
	}
	reply, ok := rc.take(10*time.Second, func(f []byte) bool {
		var r struct {
			Payload struct {
				RequestID json.RawMessage `json:"request_id"`
			} `json:"payload"`
		}
		return isReply(f) && json.Unmarshal(f, &r) == nil && bytes.Equal(r.Payload.RequestID, req.Payload.RequestID)
	})
	if !ok {
		p.t.Fatalf("%s: no reply to %s (%v)", c.ID, frame, rc.err)
	}
	return reply
}

// Pushes waits for the pushes the model expects, then a little longer
// for any it does not, which would be a failure.
func (p *emulatorMatrix) Pushes(want map[string]int) map[string][][]byte {
	out := map[string][][]byte{}
	for id, n := range want {
		for range n {
			f, ok := p.conns[id].take(10*time.Second, func(f []byte) bool { return !isReply(f) })
			if !ok {
				break
			}
			out[id] = append(out[id], f)
		}
	}
	time.Sleep(matrixSettle)
	for id, rc := range p.conns {
		for {
			f, ok := rc.take(0, func(f []byte) bool { return !isReply(f) })
			if !ok {
				break
			}
			out[id] = append(out[id], f)
		}
	}
	return out
}

// TestEmulator_PrivateMatrix: zero leaks, every reply and push as the
// model says, against the whole system.
func TestEmulator_PrivateMatrix(t *testing.T) {
	em := start(t, nil)
	p := &emulatorMatrix{t: t, conns: map[string]*rawConn{}}
	for _, c := range protocoltest.MatrixConns {
		url := em.WebSocketURL()
		if c.User != "" {
			tok, err := emulator.Token(secret, c.User, time.Hour, c.Roles...)
			if err != nil {
				t.Fatal(err)
			}
			url += "?token=" + tok
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ws, _, err := websocket.Dial(ctx, url, nil)
		cancel()
		if err != nil {
			t.Fatalf("dial %s: %v", c.ID, err)
		}
		ws.SetReadLimit(1 << 20)
		t.Cleanup(func() { ws.CloseNow() })
		rc := &rawConn{c: ws, more: make(chan struct{}, 1)}
		go rc.read()
		p.conns[c.ID] = rc
	}
	out := protocoltest.PlayMatrix(t, p)
	if testing.Verbose() {
		t.Logf("transcript:\n%s", out)
	}
}

// TestEmulator_TokenExpires: a connection outlives its token; from the
// token's exp on, every frame is answered 401 Token expired and its
// subscriptions are pushed nothing.
func TestEmulator_TokenExpires(t *testing.T) {
	em := start(t, nil)
	tok, err := emulator.Token(secret, "carol", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	carol := mustDial(t, em, tok)
	wantStatus(t, carol.send("questions", `{"action":"subscribe","data":{"action":"create"}}`), 200)
	anon := mustDial(t, em, "")
	r := anon.send("questions", `{"action":"create","data":{"question_text":"Before?"}}`)
	wantStatus(t, r, 201)
	if _, err := carol.push("create", dataOf(t, r)["id"].(string)); err != nil {
		t.Fatalf("before exp: no push: %v", err)
	}
	// exp has one-second resolution: wait until it has surely passed.
	time.Sleep(3 * time.Second)
	r = carol.send("questions", `{"action":"list"}`)
	wantStatus(t, r, 401)
	if got := string(r.Payload.Errors); got != `["Token expired"]` {
		t.Errorf("errors = %s, want [\"Token expired\"]", got)
	}
	wantStatus(t, anon.send("questions", `{"action":"create","data":{"question_text":"After?"}}`), 201)
	time.Sleep(ptSettle)
	if ps := carol.pushes(); len(ps) != 0 {
		t.Errorf("after exp: got push %s, want none", ps[0].raw)
	}
}

// TestEmulator_EnterLeave: a subscriber to published questions sees a
// question enter when it is published (a create push), change while it
// stays published (update), and leave when it is unpublished (a delete
// push with the question as it was), and nothing while it is outside.
func TestEmulator_EnterLeave(t *testing.T) {
	em := start(t, nil)
	sub := mustDial(t, em, "")
	for _, a := range []string{"create", "update", "delete"} {
		wantStatus(t, sub.send("questions", `{"action":"subscribe","data":{"action":"`+a+`","filter":{"published":true}}}`), 200)
	}
	w := mustDial(t, em, "")
	r := w.send("questions", `{"action":"create","data":{"question_text":"Draft"}}`)
	wantStatus(t, r, 201)
	pk, _ := dataOf(t, r)["id"].(string)
	steps := []struct {
		payload    string
		push, text string // "" for no push
		published  bool
	}{
		{`{"action":"patch","pk":"` + pk + `","data":{"question_text":"Still a draft"}}`, "", "", false},
		{`{"action":"publish","pk":"` + pk + `"}`, "create", "Still a draft", true},
		{`{"action":"patch","pk":"` + pk + `","data":{"question_text":"Live"}}`, "update", "Live", true},
		{`{"action":"unpublish","pk":"` + pk + `"}`, "delete", "Live", true},
		{`{"action":"patch","pk":"` + pk + `","data":{"question_text":"Hidden"}}`, "", "", false},
	}
	for _, s := range steps {
		wantStatus(t, w.send("questions", s.payload), 200)
		if s.push == "" {
			time.Sleep(ptSettle)
			if ps := sub.pushes(); len(ps) != 0 {
				t.Fatalf("%s: got push %s, want none", s.payload, ps[0].raw)
			}
			continue
		}
		f, err := sub.push(s.push, pk)
		if err != nil {
			t.Fatalf("%s: no %s push: %v", s.payload, s.push, err)
		}
		d := dataOf(t, f)
		if d["question_text"] != s.text || d["published"] != s.published {
			t.Errorf("%s: %s push data %v, want question_text %q, published %v", s.payload, s.push, d, s.text, s.published)
		}
	}
}
