package emulator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/coder/websocket"

	"github.com/wsbind/wsbind/local/emulator"
	"github.com/wsbind/wsbind/local/emulatortest"
)

var secret = emulatortest.Secret

func start(t testing.TB, tune func(*emulator.Config)) *emulator.Emulator {
	t.Helper()
	return emulatortest.Start(t, tune)
}

// frame is a reply or a push as a client reads it.
type frame struct {
	Stream  string `json:"stream"`
	Payload struct {
		Action    string          `json:"action"`
		Status    int             `json:"response_status"`
		RequestID string          `json:"request_id"`
		Errors    json.RawMessage `json:"errors"`
		Data      json.RawMessage `json:"data"`
		PK        string          `json:"pk"`
		Model     string          `json:"model"`
		Version   int64           `json:"version"`
		Truncated bool            `json:"truncated"`
	} `json:"payload"`
	raw string
}

func (f frame) isReply() bool { return f.Payload.Status != 0 }

// client is one WebSocket connection: replies by request_id, pushes in
// arrival order.
type client struct {
	t      testing.TB
	c      *websocket.Conn
	mu     sync.Mutex
	frames []frame
	more   chan struct{}
	closed error
	seq    int
}

func dial(t testing.TB, em *emulator.Emulator, token string) (*client, error) {
	t.Helper()
	url := em.WebSocketURL()
	if token != "" {
		url += "?token=" + token
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("status %d: %w", resp.StatusCode, err)
		}
		return nil, err
	}
	c.SetReadLimit(1 << 20)
	cl := &client{t: t, c: c, more: make(chan struct{}, 1)}
	go cl.read()
	t.Cleanup(func() { c.CloseNow() })
	return cl, nil
}

func mustDial(t testing.TB, em *emulator.Emulator, token string) *client {
	t.Helper()
	c, err := dial(t, em, token)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

func (c *client) read() {
	for {
		_, b, err := c.c.Read(context.Background())
		c.mu.Lock()
		if err != nil {
			c.closed = err
			c.mu.Unlock()
			select {
			case c.more <- struct{}{}:
			default:
			}
			return
		}
		var f frame
		if jerr := json.Unmarshal(b, &f); jerr != nil {
			f.Payload.Status = -1
		}
		f.raw = string(b)
		c.frames = append(c.frames, f)
		c.mu.Unlock()
		select {
		case c.more <- struct{}{}:
		default:
		}
	}
}

// await returns the first frame matching ok, waiting up to d.
func (c *client) await(d time.Duration, ok func(frame) bool) (frame, error) {
	deadline := time.After(d)
	for {
		c.mu.Lock()
		for i, f := range c.frames {
			if ok(f) {
				c.frames = append(c.frames[:i:i], c.frames[i+1:]...)
				c.mu.Unlock()
				return f, nil
			}
		}
		closed := c.closed
		c.mu.Unlock()
		if closed != nil {
			return frame{}, closed
		}
		select {
		case <-c.more:
		case <-deadline:
			return frame{}, errors.New("timed out")
		}
	}
}

// send sends a request (payload without request_id) and returns its reply.
func (c *client) send(stream, payload string) frame {
	c.t.Helper()
	c.seq++
	id := fmt.Sprintf("r%d", c.seq)
	payload = strings.TrimSuffix(payload, "}")
	if payload != "{" {
		payload += ","
	}
	msg := fmt.Sprintf(`{"stream":%q,"payload":%s"request_id":%q}}`, stream, payload, id)
	if err := c.c.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	f, err := c.await(10*time.Second, func(f frame) bool { return f.isReply() && f.Payload.RequestID == id })
	if err != nil {
		c.t.Fatalf("reply to %s: %v", msg, err)
	}
	return f
}

// push waits for a push of action on pk.
func (c *client) push(action, pk string) (frame, error) {
	return c.await(10*time.Second, func(f frame) bool {
		return !f.isReply() && f.Payload.Action == action && f.Payload.PK == pk
	})
}

// pushes returns the pushes received so far.
func (c *client) pushes() []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []frame
	for _, f := range c.frames {
		if !f.isReply() {
			out = append(out, f)
		}
	}
	return out
}

func dataOf(t testing.TB, f frame) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(f.Payload.Data, &m); err != nil {
		t.Fatalf("data of %s: %v", f.raw, err)
	}
	return m
}

func wantStatus(t testing.TB, f frame, status int) {
	t.Helper()
	if f.Payload.Status != status {
		t.Fatalf("want status %d, got %s", status, f.raw)
	}
}

// TestEmulator_Questions runs the REST actions and subscriptions of
// the protocol (docs/protocol.md) over real WebSockets: every action's reply, and the pushes
// of creates, updates and deletes to subscribers.
func TestEmulator_Questions(t *testing.T) {
	em := start(t, nil)
	alice := mustDial(t, em, "")
	watcher := mustDial(t, em, "")

	wantStatus(t, watcher.send("questions", `{"action":"subscribe","data":{"action":"create"}}`), 200)
	created := alice.send("questions", `{"action":"create","data":{"question_text":"What is the answer?"}}`)
	wantStatus(t, created, 201)
	pk, _ := dataOf(t, created)["id"].(string)
	if pk == "" {
		t.Fatalf("create: no id in %s", created.raw)
	}
	if p, err := watcher.push("create", pk); err != nil {
		t.Fatalf("create push: %v", err)
	} else if dataOf(t, p)["question_text"] != "What is the answer?" || p.Payload.Model != "polls.question" {
		t.Errorf("create push: %s", p.raw)
	}

	wantStatus(t, watcher.send("questions", `{"action":"subscribe","pk":"`+pk+`","data":{"action":"update"}}`), 200)
	wantStatus(t, watcher.send("questions", `{"action":"subscribe","pk":"`+pk+`","data":{"action":"delete"}}`), 200)

	got := alice.send("questions", `{"action":"retrieve","pk":"`+pk+`"}`)
	wantStatus(t, got, 200)
	if dataOf(t, got)["question_text"] != "What is the answer?" {
		t.Errorf("retrieve: %s", got.raw)
	}
	wantStatus(t, alice.send("questions", `{"action":"retrieve","pk":"no-such-id"}`), 404)
	wantStatus(t, alice.send("questions", `{"action":"create","data":{}}`), 400)

	upd := alice.send("questions", `{"action":"update","pk":"`+pk+`","data":{"question_text":"Forty-two?"}}`)
	wantStatus(t, upd, 200)
	if p, err := watcher.push("update", pk); err != nil || dataOf(t, p)["question_text"] != "Forty-two?" {
		t.Errorf("update push: %+v, %v", p.raw, err)
	}
	wantStatus(t, alice.send("questions", `{"action":"patch","pk":"`+pk+`","data":{"question_text":"Patched"}}`), 200)
	if p, err := watcher.push("update", pk); err != nil || dataOf(t, p)["question_text"] != "Patched" {
		t.Errorf("patch push: %+v, %v", p.raw, err)
	}

	for i := range 3 {
		wantStatus(t, alice.send("questions", fmt.Sprintf(`{"action":"create","data":{"question_text":"Q%d"}}`, i)), 201)
	}
	list := alice.send("questions", `{"action":"list","data":{"page":1}}`)
	wantStatus(t, list, 200)
	if n := strings.Count(list.raw, `"question_text":`); n != 4 {
		t.Errorf("list: %d questions, want 4: %s", n, list.raw)
	}

	wantStatus(t, alice.send("questions", `{"action":"delete","pk":"`+pk+`"}`), 200)
	if _, err := watcher.push("delete", pk); err != nil {
		t.Errorf("delete push: %v", err)
	}
	wantStatus(t, alice.send("questions", `{"action":"retrieve","pk":"`+pk+`"}`), 404)

	// Bad input: a precise reply, and the connection goes on.
	bad := alice.sendRaw(t, `{"stream":"questions","payload":`)
	if bad.Payload.Status != 400 {
		t.Errorf("malformed frame: %s", bad.raw)
	}
	wantStatus(t, alice.send("nosuchstream", `{"action":"list"}`), 400)
	wantStatus(t, alice.send("questions", `{"action":"list"}`), 200)

	// Exactly one push per change per subscriber: the watcher got the
	// four creates, two updates and one delete it asked for, no more.
	time.Sleep(300 * time.Millisecond)
	if extra := watcher.pushes(); len(extra) != 3 {
		// the three creates Q0..Q2 are still unread; nothing else
		var raws []string
		for _, f := range extra {
			raws = append(raws, f.raw)
		}
		t.Errorf("unread pushes: got %d, want the 3 creates:\n%s", len(extra), strings.Join(raws, "\n"))
	}
}

// sendRaw sends a frame as is and returns the next reply.
func (c *client) sendRaw(t testing.TB, msg string) frame {
	t.Helper()
	if err := c.c.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	f, err := c.await(10*time.Second, func(f frame) bool { return f.isReply() })
	if err != nil {
		t.Fatalf("reply to %q: %v", msg, err)
	}
	return f
}

// TestEmulator_DirectWrite: a change made straight to the DynamoDB
// endpoint with the SDK, not through the API, reaches subscribers.
func TestEmulator_DirectWrite(t *testing.T) {
	em := start(t, nil)
	watcher := mustDial(t, em, "")
	wantStatus(t, watcher.send("questions", `{"action":"subscribe","data":{"action":"create"}}`), 200)

	client := emulator.DynamoDBClient(em.DynamoDBEndpoint())
	_, err := client.PutItem(context.Background(), &dynamodb.PutItemInput{
		TableName: aws.String(emulator.Tables.Items),
		Item: map[string]types.AttributeValue{
			"_stream":       &types.AttributeValueMemberS{Value: "questions"},
			"id":            &types.AttributeValueMemberS{Value: "from-a-script"},
			"_version":      &types.AttributeValueMemberN{Value: "1"},
			"question_text": &types.AttributeValueMemberS{Value: "Written by a script"},
			"pub_date":      &types.AttributeValueMemberS{Value: "2026-11-27T00:00:00Z"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := watcher.push("create", "from-a-script")
	if err != nil {
		t.Fatalf("push of a direct write: %v", err)
	}
	if dataOf(t, p)["question_text"] != "Written by a script" {
		t.Errorf("push: %s", p.raw)
	}
}

// TestEmulator_Auth: notes need a token; its sub is the owner; a bad
// token is refused at the handshake with 401.
func TestEmulator_Auth(t *testing.T) {
	em := start(t, nil)
	anon := mustDial(t, em, "")
	wantStatus(t, anon.send("notes", `{"action":"create","data":{"text":"mine"}}`), 401)

	token, err := emulator.Token(secret, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	alice := mustDial(t, em, token)
	created := alice.send("notes", `{"action":"create","data":{"text":"mine"}}`)
	wantStatus(t, created, 201)
	if owner := dataOf(t, created)["owner"]; owner != "alice" {
		t.Errorf("owner: got %v, want alice (%s)", owner, created.raw)
	}

	forged, err := emulator.Token([]byte("not-the-emulator-secret-but-long-enough"), "mallory", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dial(t, em, forged)
	if err == nil || !strings.Contains(err.Error(), "status 401") {
		t.Errorf("dial with a forged token: got %v, want a 401 handshake", err)
	}
}

// TestEmulator_Oversize: a message over 128 KB closes the connection with
// 1009, as API Gateway does.
func TestEmulator_Oversize(t *testing.T) {
	em := start(t, nil)
	c := mustDial(t, em, "")
	big := `{"stream":"questions","payload":{"action":"create","data":{"question_text":"` + strings.Repeat("x", 130<<10) + `"}}}`
	c.c.Write(context.Background(), websocket.MessageText, []byte(big))
	_, err := c.await(10*time.Second, func(frame) bool { return false })
	if code := websocket.CloseStatus(err); code != websocket.StatusMessageTooBig {
		t.Errorf("oversize message: got %v (close status %d), want 1009", err, code)
	}
	// The emulator goes on serving.
	wantStatus(t, mustDial(t, em, "").send("questions", `{"action":"list"}`), 200)
}

// TestEmulator_Page: the debugger page and the bindings it offers are at
// the gateway's origin.
func TestEmulator_Page(t *testing.T) {
	em := start(t, nil)
	resp, err := http.Get(em.DebuggerURL() + "bindings.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"questions"`) || !strings.Contains(string(b), `"notes"`) {
		t.Errorf("bindings.json: %d %s", resp.StatusCode, b)
	}
	// Beside it, the AsyncAPI document made of the same description.
	resp, err = http.Get(em.DebuggerURL() + "asyncapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"asyncapi": "3.0.0"`) || !strings.Contains(string(b), `"questions.create"`) {
		t.Errorf("asyncapi.json: %d %.300s", resp.StatusCode, b)
	}
}
