package lambdainit_test

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
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wsbind/wsbind/bindings"
	"github.com/wsbind/wsbind/internal/aws/lambdahost"
	"github.com/wsbind/wsbind/internal/core/store/memory"
	"github.com/wsbind/wsbind/internal/sandbox/guest"
	"github.com/wsbind/wsbind/internal/sandbox/host"
	"github.com/wsbind/wsbind/resource"
)

// Helpers shared with internal/aws/lambdahost's tests: the sample events
// (read from its testdata) and a fixture of services over the memory store.

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
	b, err := os.ReadFile(filepath.Join("..", "lambdahost", "testdata", name))
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

func invoke(t testing.TB, h lambda.Handler, payload []byte) []byte {
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

const sampleReply = `{"stream":null,"payload":{"action":null,"data":null,"errors":["Invalid Message: stream is missing"],"response_status":400,"request_id":null}}`

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
