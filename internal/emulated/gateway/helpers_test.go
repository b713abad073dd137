package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wsbind/wsbind/internal/aws/auth"
)

// secret signs the tests' tokens.
var secret = []byte("gateway-test-secret-of-at-least-32-bytes")

// token returns an HS256 token for sub, signed with key, valid for ttl
// (expired when ttl is negative).
func token(t testing.TB, key []byte, sub string, ttl time.Duration) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "exp": time.Now().Add(ttl).Unix(), "team": "blue",
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// authorizer is the real REQUEST authorizer (internal/aws/auth) verifying
// tokens signed with secret.
func authorizer(t testing.TB) lambda.Handler {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{HS256Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return auth.NewAuthorizer(v, quietLog())
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fn is a lambda.Handler made of a Go function.
type fn func(ctx context.Context, payload []byte) ([]byte, error)

func (f fn) Invoke(ctx context.Context, payload []byte) ([]byte, error) { return f(ctx, payload) }

// recorder is a Connect or Route function that records every event and
// answers with answer (nil: status 200, and for MESSAGE events the body
// "echo:" + body).
type recorder struct {
	mu     sync.Mutex
	events []events.APIGatewayWebsocketProxyRequest
	answer func(ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error)
}

func (r *recorder) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.APIGatewayWebsocketProxyRequest
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	answer := r.answer
	r.mu.Unlock()
	resp := events.APIGatewayProxyResponse{StatusCode: 200}
	if ev.RequestContext.EventType == eventMessage {
		resp.Body = "echo:" + ev.Body
	}
	if answer != nil {
		var err error
		if resp, err = answer(ev); err != nil {
			return nil, err
		}
	}
	return json.Marshal(resp)
}

// of returns the recorded events of one type (all types for "").
func (r *recorder) of(eventType, connID string) []events.APIGatewayWebsocketProxyRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []events.APIGatewayWebsocketProxyRequest
	for _, ev := range r.events {
		if (eventType == "" || ev.RequestContext.EventType == eventType) && (connID == "" || ev.RequestContext.ConnectionID == connID) {
			out = append(out, ev)
		}
	}
	return out
}

// testGateway is a Gateway served over real HTTP on 127.0.0.1.
type testGateway struct {
	*Gateway
	srv *httptest.Server
	ws  string // ws://127.0.0.1:port/
}

func start(t testing.TB, cfg Config) *testGateway {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = quietLog()
	}
	g := New(cfg)
	srv := httptest.NewServer(g)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		srv.Close()
	})
	return &testGateway{Gateway: g, srv: srv, ws: "ws" + strings.TrimPrefix(srv.URL, "http") + "/"}
}

// dial connects a client; query is appended to the URL.
func (tg *testGateway) dial(t testing.TB, query string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, tg.ws+query, &websocket.DialOptions{
		HTTPHeader: http.Header{"User-Agent": {"gateway-test/1"}},
	})
	if c != nil {
		c.SetReadLimit(-1)
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

func (tg *testGateway) mustDial(t testing.TB, query string) *websocket.Conn {
	t.Helper()
	c, _, err := tg.dial(t, query)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

// client is the aws-sdk-go-v2 management API client for tg, signing
// with made-up credentials.
func (tg *testGateway) client() *apigatewaymanagementapi.Client {
	return apigatewaymanagementapi.NewFromConfig(awsConfig(), func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(tg.ManagementEndpoint(tg.srv.URL))
	})
}

func awsConfig() aws.Config {
	return aws.Config{
		Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDLOCAL", SecretAccessKey: "local"}, nil
		}),
		RetryMaxAttempts: 1,
	}
}

// read reads one message within a few seconds.
func read(t testing.TB, c *websocket.Conn) (websocket.MessageType, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, string(b)
}

// write sends a text message.
func write(t testing.TB, c *websocket.Conn, s string) {
	t.Helper()
	if err := c.Write(context.Background(), websocket.MessageText, []byte(s)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// closeOf reads until the connection closes, for at most within, and
// returns the error the client's read ended with (a deadline error if
// it stayed open).
func closeOf(t testing.TB, c *websocket.Conn, within time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return err
		}
	}
}

// eventually waits until cond holds, failing after a few seconds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// connID returns the id of the connection whose $connect conn recorded
// last.
func connID(t testing.TB, conn *recorder) string {
	t.Helper()
	evs := conn.of(eventConnect, "")
	if len(evs) == 0 {
		t.Fatal("no $connect event")
	}
	return evs[len(evs)-1].RequestContext.ConnectionID
}
