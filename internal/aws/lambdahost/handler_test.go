package lambdahost_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsbind/wsbind/bindings"
	"github.com/wsbind/wsbind/internal/aws/lambdahost"
	"github.com/wsbind/wsbind/internal/core/identity"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/core/store/memory"
	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/internal/sandbox/guest"
	"github.com/wsbind/wsbind/internal/sandbox/host"
	"github.com/wsbind/wsbind/resource"
)

// AWS's sample events, copied unchanged from aws-lambda-go's
// events/testdata.
const (
	sampleConnect    = "apigw-websocket-request.json"              // CONNECT, authorizer {principalId: admin, clientId: 1, clientName: Exata}
	sampleMessage    = "apigw-websocket-request-send-message.json" // MESSAGE, body {"a": 1}, no authorizer
	sampleDisconnect = "apigw-websocket-request-disconnect.json"   // DISCONNECT of R1kmxc2VNjMCFIA=
	sampleDynamoDB   = "dynamodb-event.json"                       // two INSERTs keyed by "key" and "val"
)

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nativeProgram links the application's guest code into the test, as the
// bootstrap built with -tags wsbind_native does.
func nativeProgram(c guest.Caller) map[string]guest.Entry {
	return guest.All(c, bindings.Registry(resource.Settings{}))
}

// recorder is a Poster that keeps every push; failOn makes its nth call
// (from 1) fail.
type recorder struct {
	mu     sync.Mutex
	calls  int
	failOn int
	posts  []string // "conn frame"
}

func (r *recorder) Post(_ context.Context, frame []byte, ids []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.calls == r.failOn {
		return errors.New("post: throttled")
	}
	for _, id := range ids {
		r.posts = append(r.posts, id+" "+string(frame))
	}
	return nil
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.posts
	r.posts = nil
	return out
}

// logBuffer collects log lines, safely across goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var clock = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fixture is the services of one test: the memory store, a recording
// Poster, a fixed clock, logs kept for inspection.
type fixture struct {
	store *memory.Store
	posts *recorder
	logs  *logBuffer
	svc   *host.Services
}

func newFixture() *fixture {
	st := memory.New()
	f := &fixture{store: st, posts: &recorder{}, logs: &logBuffer{}}
	f.svc = &host.Services{
		Store: st, Subscribers: st, Conns: st, Poster: f.posts,
		Now: func() time.Time { return clock },
		Log: slog.New(slog.NewTextHandler(f.logs, nil)),
	}
	return f
}

// handler serves fn over the native engine and f's services.
func (f *fixture) handler(t testing.TB, fn string, mod host.Module) *lambdahost.Handler {
	t.Helper()
	if mod == nil {
		mod = host.NativeModule(nativeProgram)
	}
	pool := host.NewPool(mod, 1)
	t.Cleanup(func() { pool.Close(context.Background()) })
	h, err := lambdahost.New(lambdahost.Config{Function: fn, Pool: pool, Services: f.svc})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func invoke(t testing.TB, h *lambdahost.Handler, payload []byte) []byte {
	t.Helper()
	out, err := h.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	return out
}

// proxyResponse decodes a connect or route answer.
func proxyResponse(t testing.TB, out []byte) events.APIGatewayProxyResponse {
	t.Helper()
	var resp events.APIGatewayProxyResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	return resp
}

// send routes a frame from a connection, as API Gateway's $default would.
func send(t testing.TB, h *lambdahost.Handler, conn string, authorizer map[string]any, frame string) string {
	t.Helper()
	ev := events.APIGatewayWebsocketProxyRequest{
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{
			EventType: "MESSAGE", RouteKey: "$default", ConnectionID: conn, Authorizer: authorizer,
		},
		Body: frame,
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	resp := proxyResponse(t, invoke(t, h, b))
	if resp.StatusCode != 200 {
		t.Fatalf("route status: got %d, want 200", resp.StatusCode)
	}
	return resp.Body
}

func TestNew(t *testing.T) {
	pool := host.NewPool(host.NativeModule(nativeProgram), 1)
	for _, fn := range []string{lambdahost.NameConnect, lambdahost.NameRoute, lambdahost.NameStreamFanout} {
		if _, err := lambdahost.New(lambdahost.Config{Function: fn, Pool: pool}); err != nil {
			t.Errorf("New(%q): %v", fn, err)
		}
	}
	for _, cfg := range []lambdahost.Config{{Function: "bootstrap", Pool: pool}, {Function: ""}, {Function: lambdahost.NameRoute}} {
		if _, err := lambdahost.New(cfg); err == nil {
			t.Errorf("New(%+v): got nil error", cfg)
		}
	}
}

func TestHandler_Connect(t *testing.T) {
	f := newFixture()
	h := f.handler(t, lambdahost.NameConnect, nil)

	// AWS's $connect sample: its REQUEST authorizer's context has a
	// principalId, a number and a string, and no sub: no verified token,
	// an anonymous connection.
	if resp := proxyResponse(t, invoke(t, h, sample(t, sampleConnect))); resp.StatusCode != 200 {
		t.Errorf("connect: got status %d, want 200", resp.StatusCode)
	}
	got, ok := f.store.Conn("TWegAcC4EowCHnA=")
	want := store.Conn{
		ConnID: "TWegAcC4EowCHnA=", At: 1547230720092,
	}
	if !ok || !sameConn(got, want) {
		t.Errorf("recorded connection: got %+v (%v), want %+v", got, ok, want)
	}

	// AWS's $disconnect sample drops the connection and its subscriptions.
	const conn = "R1kmxc2VNjMCFIA="
	f.store.PutConn(context.Background(), store.Conn{ConnID: conn})
	f.store.Subscribe(context.Background(), store.Subscription{Topic: "questions#update", ConnID: conn})
	if resp := proxyResponse(t, invoke(t, h, sample(t, sampleDisconnect))); resp.StatusCode != 200 {
		t.Errorf("disconnect: got status %d, want 200", resp.StatusCode)
	}
	if _, ok := f.store.Conn(conn); ok {
		t.Error("connection still recorded after $disconnect")
	}
	if topics := f.store.Topics(conn); len(topics) != 0 {
		t.Errorf("subscriptions after $disconnect: got %v, want none", topics)
	}
}

func sameConn(a, b store.Conn) bool {
	if a.ConnID != b.ConnID || a.At != b.At || a.User.ID != b.User.ID || len(a.User.Claims) != len(b.User.Claims) {
		return false
	}
	for k, v := range a.User.Claims {
		if w, ok := b.User.Claims[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestHandler_Connect_User: who the user is, from the authorizer context.
func TestHandler_Connect_User(t *testing.T) {
	tests := []struct {
		name       string
		authorizer string // JSON, or "" for none
		want       identity.User
	}{
		{"none", "", identity.User{}},
		{"sub", `{"sub":"u-1","principalId":"u-1","integrationLatency":12,"email":"a@example.com","admin":true,"n":12345678901234567890.5}`,
			identity.User{ID: "u-1", Claims: map[string]string{"email": "a@example.com", "admin": "true", "n": "12345678901234567890.5"}}},
		{"principalId alone is anonymous", `{"principalId":"anonymous"}`, identity.User{}},
		{"principalId without sub", `{"principalId":"p-1","admin":true}`, identity.User{}},
		{"number id", `{"sub":42}`, identity.User{ID: "42"}},
		{"no id", `{"email":"a@example.com"}`, identity.User{}},
		{"empty sub", `{"sub":"","principalId":"p"}`, identity.User{}},
		{"not scalars", `{"sub":"u","obj":{"a":1},"list":[1],"nil":null}`, identity.User{ID: "u"}},
		{"not an object", `"u-1"`, identity.User{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			h := f.handler(t, lambdahost.NameConnect, nil)
			auth := ""
			if tt.authorizer != "" {
				auth = `"authorizer":` + tt.authorizer + `,`
			}
			ev := `{"requestContext":{` + auth + `"eventType":"CONNECT","connectionId":"c1","connectedAt":7}}`
			if resp := proxyResponse(t, invoke(t, h, []byte(ev))); resp.StatusCode != 200 {
				t.Fatalf("status: got %d, want 200", resp.StatusCode)
			}
			got, _ := f.store.Conn("c1")
			want := store.Conn{ConnID: "c1", At: 7, User: tt.want}
			if !sameConn(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

// failingConns refuses to record connections.
type failingConns struct{}

func (failingConns) PutConn(context.Context, store.Conn) error {
	return errors.New("table unavailable")
}
func (failingConns) DropConn(context.Context, string) error { return errors.New("table unavailable") }

func TestHandler_Connect_Refused(t *testing.T) {
	f := newFixture()
	f.svc.Conns = failingConns{}
	h := f.handler(t, lambdahost.NameConnect, nil)
	if resp := proxyResponse(t, invoke(t, h, sample(t, sampleConnect))); resp.StatusCode != 403 {
		t.Errorf("connect the guest refused: got status %d, want 403", resp.StatusCode)
	}

	// A guest that traps answers 500: the connection is refused too.
	f = newFixture()
	h = f.handler(t, lambdahost.NameConnect, host.NativeModule(func(c guest.Caller) map[string]guest.Entry {
		return map[string]guest.Entry{abi.ExportConnect: func([]byte) []byte { panic("boom") }}
	}))
	if resp := proxyResponse(t, invoke(t, h, sample(t, sampleConnect))); resp.StatusCode != 500 {
		t.Errorf("connect the guest trapped on: got status %d, want 500", resp.StatusCode)
	}
	if !strings.Contains(f.logs.String(), "boom") {
		t.Errorf("log does not tell the trap: %s", f.logs)
	}
}

// sampleReply is the route's reply to AWS's MESSAGE sample, whose body
// {"a": 1} is JSON but not a request of the protocol.
const sampleReply = `{"stream":null,"payload":{"action":null,"data":null,"errors":["Invalid Message: stream is missing"],"response_status":400,"request_id":null}}`

func TestHandler_Route(t *testing.T) {
	f := newFixture()
	h := f.handler(t, lambdahost.NameRoute, nil)
	resp := proxyResponse(t, invoke(t, h, sample(t, sampleMessage)))
	if resp.StatusCode != 200 || resp.Body != sampleReply {
		t.Errorf("reply to the sample: got %d %s, want 200 %s", resp.StatusCode, resp.Body, sampleReply)
	}

	// A request of the protocol, base64-encoded, from an authenticated
	// connection: the user reaches the binding (notes need one, and
	// record it as the owner).
	frame := `{"stream":"notes","payload":{"action":"create","data":{"text":"hi <&>"},"request_id":7}}`
	ev := `{"requestContext":{"eventType":"MESSAGE","connectionId":"c1","authorizer":{"sub":"alice"}},` +
		`"body":"` + base64String(frame) + `","isBase64Encoded":true}`
	out := invoke(t, h, []byte(ev))
	resp = proxyResponse(t, out)
	var reply struct {
		Payload struct {
			Data           map[string]any `json:"data"`
			ResponseStatus int            `json:"response_status"`
		} `json:"payload"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &reply); err != nil {
		t.Fatalf("reply %q: %v", resp.Body, err)
	}
	if reply.Payload.ResponseStatus != 201 || reply.Payload.Data["owner"] != "alice" || reply.Payload.Data["text"] != "hi <&>" {
		t.Errorf("create note: got %s", resp.Body)
	}
	if !bytes.Contains(out, []byte(`hi <&>`)) {
		t.Errorf("the response escapes the reply's HTML characters: %s", out)
	}
	// Anonymous, the same request is refused by the binding.
	body := send(t, h, "c2", nil, frame)
	if !strings.Contains(body, `"response_status":401`) {
		t.Errorf("anonymous create note: got %s, want 401", body)
	}
}

func base64String(s string) string {
	b, _ := json.Marshal([]byte(s)) // encoding/json writes []byte as base64
	return strings.Trim(string(b), `"`)
}

// TestHandler_WrongEvent: an event the function does not serve fails the
// invocation, loudly, without reaching the guest.
func TestHandler_WrongEvent(t *testing.T) {
	sqs := `{"Records":[{"messageId":"m1","eventSource":"aws:sqs","body":"x"}]}`
	tests := []struct {
		fn      string
		payload []byte
	}{
		{lambdahost.NameConnect, sample(t, sampleMessage)},
		{lambdahost.NameConnect, sample(t, sampleDynamoDB)},
		{lambdahost.NameRoute, sample(t, sampleConnect)},
		{lambdahost.NameRoute, sample(t, sampleDisconnect)},
		{lambdahost.NameRoute, sample(t, sampleDynamoDB)},
		{lambdahost.NameRoute, []byte(`{"requestContext":{"eventType":"MESSAGE"},"body":"%%%","isBase64Encoded":true}`)},
		{lambdahost.NameStreamFanout, sample(t, sampleMessage)},
		{lambdahost.NameStreamFanout, sample(t, sampleConnect)},
		{lambdahost.NameStreamFanout, []byte(sqs)},
		{lambdahost.NameStreamFanout, []byte(`{"Records":{}}`)},
	}
	for _, fn := range []string{lambdahost.NameConnect, lambdahost.NameRoute, lambdahost.NameStreamFanout} {
		for _, p := range []string{``, `not json`, `null`, `[]`, `{}`, `{"requestContext":`} {
			tests = append(tests, struct {
				fn      string
				payload []byte
			}{fn, []byte(p)})
		}
	}
	for _, tt := range tests {
		f := newFixture()
		h := f.handler(t, tt.fn, host.NativeModule(func(c guest.Caller) map[string]guest.Entry {
			panic("the guest was reached")
		}))
		out, err := h.Invoke(context.Background(), tt.payload)
		if err == nil {
			t.Errorf("%s given %.60s: got %s, want an error", tt.fn, tt.payload, out)
		}
	}
}

// An image of a questions item in the items table, as the stream has it.
func questionImage(id, text string, published bool, version int) string {
	pub := "false"
	if published {
		pub = "true"
	}
	return `{"_stream":{"S":"questions"},"id":{"S":"` + id + `"},"_version":{"N":"` + string(rune('0'+version)) + `"},` +
		`"question_text":{"S":"` + text + `"},"pub_date":{"S":"2026-01-02T03:04:05Z"},"published":{"BOOL":` + pub + `}}`
}

func questionKeys(id string) string {
	return `{"_stream":{"S":"questions"},"id":{"S":"` + id + `"}}`
}

// record is one stream record of the items table; identity is the
// userIdentity member, or "".
func record(seq, name, keys, oldImage, newImage, identity string) string {
	r := `{"eventID":"e` + seq + `","eventName":"` + name + `","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"us-east-1",`
	if identity != "" {
		r += `"userIdentity":` + identity + `,`
	}
	r += `"dynamodb":{"ApproximateCreationDateTime":1767323045,"Keys":` + keys
	if oldImage != "" {
		r += `,"OldImage":` + oldImage
	}
	if newImage != "" {
		r += `,"NewImage":` + newImage
	}
	return r + `,"SequenceNumber":"` + seq + `","SizeBytes":100,"StreamViewType":"NEW_AND_OLD_IMAGES"},` +
		`"eventSourceARN":"arn:aws:dynamodb:us-east-1:123456789012:table/items/stream/2026-01-01T00:00:00.000"}`
}

func batch(records ...string) []byte {
	return []byte(`{"Records":[` + strings.Join(records, ",") + `]}`)
}

// subscribeAll subscribes a connection to every create, update and delete
// of questions.
func subscribeAll(t *testing.T, f *fixture, conn, user string) {
	t.Helper()
	route := f.handler(t, lambdahost.NameRoute, nil)
	var auth map[string]any
	if user != "" {
		auth = map[string]any{"sub": user}
	}
	for _, action := range []string{"create", "update", "delete"} {
		body := send(t, route, conn, auth, `{"stream":"questions","payload":{"action":"subscribe","data":{"action":"`+action+`"}}}`)
		if !strings.Contains(body, `"response_status":200`) {
			t.Fatalf("subscribe to %s: %s", action, body)
		}
	}
}

func TestHandler_StreamFanout_Sample(t *testing.T) {
	f := newFixture()
	subscribeAll(t, f, "c-alice", "alice")
	h := f.handler(t, lambdahost.NameStreamFanout, nil)
	// AWS's sample is another table's items (keyed by "key" and "val"):
	// both records are skipped, with a log line each, and nothing fails.
	out := invoke(t, h, sample(t, sampleDynamoDB))
	if got, want := string(out), `{"batchItemFailures":[]}`; got != want {
		t.Errorf("response: got %s, want %s", got, want)
	}
	if posts := f.posts.take(); len(posts) != 0 {
		t.Errorf("posts: got %q, want none", posts)
	}
	if n := strings.Count(f.logs.String(), "skipped a record"); n != 2 {
		t.Errorf("log lines for skipped records: got %d, want 2:\n%s", n, f.logs)
	}
}

func TestHandler_StreamFanout(t *testing.T) {
	f := newFixture()
	subscribeAll(t, f, "c-alice", "alice")
	h := f.handler(t, lambdahost.NameStreamFanout, nil)
	v1 := questionImage("q1", "Hello", false, 1)
	v2 := questionImage("q1", "Hello again", true, 2)
	ttl := `{"type":"Service","principalId":"dynamodb.amazonaws.com"}`
	out := invoke(t, h, batch(
		record("100", "INSERT", questionKeys("q1"), "", v1, ""),
		record("200", "MODIFY", questionKeys("q1"), v1, v2, ""),
		record("300", "REMOVE", questionKeys("q1"), v2, "", ""),
		// An expired item removed by TTL: nobody deleted it, no push.
		record("400", "REMOVE", questionKeys("q2"), questionImage("q2", "Old", false, 1), "", ttl),
		// Another application's item in the same table: skipped.
		record("500", "INSERT", `{"pk":{"S":"x"}}`, "", `{"pk":{"S":"x"}}`, ""),
		// A stream no binding serves: the guest skips it.
		record("600", "INSERT", `{"_stream":{"S":"elsewhere"},"id":{"S":"e1"}}`, "", `{"_stream":{"S":"elsewhere"},"id":{"S":"e1"}}`, ""),
		// A service's identity other than TTL's is an ordinary change.
		record("700", "INSERT", questionKeys("q3"), "", questionImage("q3", "Third", false, 1), `{"type":"Service","principalId":"backup.amazonaws.com"}`),
	))
	if got, want := string(out), `{"batchItemFailures":[]}`; got != want {
		t.Errorf("response: got %s, want %s", got, want)
	}
	const object1 = `{"id":"q1","question_text":"Hello","pub_date":"2026-01-02T03:04:05Z","published":false}`
	const object2 = `{"id":"q1","question_text":"Hello again","pub_date":"2026-01-02T03:04:05Z","published":true}`
	want := []string{
		// The version is the image's _version; a delete's is the next.
		`c-alice {"stream":"questions","payload":{"action":"create","data":` + object1 + `,"model":"polls.question","pk":"q1","version":1}}`,
		`c-alice {"stream":"questions","payload":{"action":"update","data":` + object2 + `,"model":"polls.question","pk":"q1","version":2}}`,
		`c-alice {"stream":"questions","payload":{"action":"delete","data":` + object2 + `,"model":"polls.question","pk":"q1","version":3}}`,
		`c-alice {"stream":"questions","payload":{"action":"create","data":{"id":"q3","question_text":"Third","pub_date":"2026-01-02T03:04:05Z","published":false},"model":"polls.question","pk":"q3","version":1}}`,
	}
	got := f.posts.take()
	for i, g := range got {
		// Each push carries its history position, from the fan-out's
		// clock.
		if !cursorField.MatchString(g) {
			t.Errorf("push %d has no cursor: %s", i, g)
		}
		got[i] = cursorField.ReplaceAllString(g, "")
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("pushes:\ngot  %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	if n := strings.Count(f.logs.String(), "skipped a record"); n != 1 {
		t.Errorf("log lines for skipped records: got %d, want 1 (the foreign item):\n%s", n, f.logs)
	}
}

func TestHandler_StreamFanout_Failure(t *testing.T) {
	f := newFixture()
	subscribeAll(t, f, "c-alice", "alice")
	f.posts.failOn = 2
	h := f.handler(t, lambdahost.NameStreamFanout, nil)
	out := invoke(t, h, batch(
		record("1000000000000000000001", "INSERT", questionKeys("q1"), "", questionImage("q1", "One", false, 1), ""),
		record("1000000000000000000002", "INSERT", questionKeys("q2"), "", questionImage("q2", "Two", false, 1), ""),
		record("1000000000000000000003", "INSERT", questionKeys("q3"), "", questionImage("q3", "Three", false, 1), ""),
	))
	var resp events.DynamoDBEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "1000000000000000000002" {
		t.Errorf("batch item failures: got %s, want the second record's sequence number only", out)
	}
	if f.posts.calls != 2 {
		t.Errorf("posts attempted: got %d, want 2 (the third record is not attempted)", f.posts.calls)
	}
	if got := f.posts.take(); len(got) != 1 || !strings.Contains(got[0], `"pk":"q1"`) {
		t.Errorf("pushes delivered: got %q, want q1's only", got)
	}
	if !strings.Contains(f.logs.String(), "throttled") {
		t.Errorf("the failure is not logged:\n%s", f.logs)
	}
}

// TestHandler_StreamFanout_Deadline: out of time, the rest of the batch is
// left for the retry.
func TestHandler_StreamFanout_Deadline(t *testing.T) {
	f := newFixture()
	h := f.handler(t, lambdahost.NameStreamFanout, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out, err := h.Invoke(ctx, batch(record("9", "INSERT", questionKeys("q1"), "", questionImage("q1", "One", false, 1), "")))
	if err != nil || string(out) != `{"batchItemFailures":[{"itemIdentifier":"9"}]}` {
		t.Errorf("got %s, %v; want the first record reported", out, err)
	}
}

func FuzzHandler_Invoke(f *testing.F) {
	for _, name := range []string{sampleConnect, sampleMessage, sampleDisconnect, sampleDynamoDB} {
		f.Add(sample(f, name))
	}
	f.Add(batch(record("1", "MODIFY", questionKeys("q1"), questionImage("q1", "a", false, 1), questionImage("q1", "b", true, 2), "")))
	fx := newFixture()
	var hs []*lambdahost.Handler
	for _, fn := range []string{lambdahost.NameConnect, lambdahost.NameRoute, lambdahost.NameStreamFanout} {
		hs = append(hs, fx.handler(f, fn, nil))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, h := range hs {
			out, err := h.Invoke(context.Background(), payload)
			if err == nil && !json.Valid(out) {
				t.Errorf("response is not JSON: %s", out)
			}
		}
	})
}
