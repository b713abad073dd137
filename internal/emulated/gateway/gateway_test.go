package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
)

// idPattern is API Gateway's id look.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{15}=$`)

func TestGateway_Handshake(t *testing.T) {
	conn, route := &recorder{}, &recorder{}
	tg := start(t, Config{Authorizer: authorizer(t), Connect: conn, Route: route})

	tests := []struct {
		name       string
		query      string
		wantStatus int    // of a refused handshake; 0: connected
		wantSub    string // "" for anonymous
	}{
		{name: "no token", query: "?x=1"},
		{name: "valid token", query: "?token=" + token(t, secret, "alice", time.Hour), wantSub: "alice"},
		{name: "token of another secret", query: "?token=" + token(t, []byte("some-other-secret-of-at-least-32-bytes"), "mallory", time.Hour), wantStatus: 401},
		{name: "expired token", query: "?token=" + token(t, secret, "alice", -time.Hour), wantStatus: 401},
		{name: "garbage token", query: "?token=abc", wantStatus: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(conn.of(eventConnect, ""))
			c, resp, err := tg.dial(t, tt.query)
			if tt.wantStatus != 0 {
				if err == nil {
					t.Fatal("dial: connected, want refused")
				}
				if resp == nil || resp.StatusCode != tt.wantStatus {
					t.Fatalf("handshake status: got %v, want %d", resp, tt.wantStatus)
				}
				if n := len(conn.of(eventConnect, "")); n != before {
					t.Errorf("$connect called %d times for a refused handshake", n-before)
				}
				return
			}
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			id := connID(t, conn)
			ev := conn.of(eventConnect, id)[0]
			rc := ev.RequestContext
			if !idPattern.MatchString(id) {
				t.Errorf("connection id %q does not look like API Gateway's", id)
			}
			if rc.RouteKey != "$connect" || rc.Stage != DefaultStage || rc.APIID != DefaultAPIID || rc.DomainName != strings.TrimPrefix(tg.srv.URL, "http://") {
				t.Errorf("$connect context: got %+v", rc)
			}
			if rc.Identity.SourceIP != "127.0.0.1" || rc.Identity.UserAgent != "gateway-test/1" {
				t.Errorf("identity: got %+v", rc.Identity)
			}
			if ev.Headers["Host"] == "" || ev.Headers["Sec-Websocket-Key"] == "" {
				t.Errorf("headers: got %v, want Host and Sec-WebSocket-Key", ev.Headers)
			}
			if len(ev.QueryStringParameters) == 0 {
				t.Errorf("query string: got none, want %s", tt.query)
			}
			checkUser(t, "$connect", rc.Authorizer, tt.wantSub)

			write(t, c, "hello")
			if _, got := read(t, c); got != "echo:hello" {
				t.Errorf("reply: got %q, want %q", got, "echo:hello")
			}
			msg := route.of(eventMessage, id)
			if len(msg) != 1 {
				t.Fatalf("MESSAGE events: got %d, want 1", len(msg))
			}
			checkUser(t, "$default", msg[0].RequestContext.Authorizer, tt.wantSub)
		})
	}
}

// checkUser checks requestContext.authorizer: principalId always (API
// Gateway requires one), sub and the token's claims only for a user.
func checkUser(t *testing.T, route string, authorizer any, wantSub string) {
	t.Helper()
	m, ok := authorizer.(map[string]any)
	if !ok {
		t.Fatalf("%s authorizer: got %#v, want a map", route, authorizer)
	}
	if m["principalId"] == nil || m["integrationLatency"] == nil {
		t.Errorf("%s authorizer: got %v, want principalId and integrationLatency", route, m)
	}
	sub, _ := m["sub"].(string)
	if sub != wantSub {
		t.Errorf("%s authorizer sub: got %q, want %q", route, sub, wantSub)
	}
	if wantSub != "" && m["team"] != "blue" {
		t.Errorf("%s authorizer team claim: got %v, want blue", route, m["team"])
	}
}

// TestGateway_AuthorizerResults feeds the handshake authorizer answers
// API Gateway treats differently.
func TestGateway_AuthorizerResults(t *testing.T) {
	policy := func(effect, resource string) string {
		return `{"principalId":"p","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"` + effect + `","Resource":"` + resource + `"}]},"context":{"n":1,"b":true,"s":"x"}}`
	}
	tests := []struct {
		name   string
		out    string
		err    error
		status int // 0: connected
	}{
		{name: "allow exact arn", out: policy("Allow", "arn:aws:execute-api:us-east-1:000000000000:wsbindlocal/local/$connect")},
		{name: "allow wildcard", out: policy("Allow", "arn:aws:execute-api:*:*:wsbindlocal/*")},
		{name: "allow another api", out: policy("Allow", "arn:aws:execute-api:*:*:otherapi/*"), status: 403},
		{name: "deny", out: policy("Deny", "*"), status: 403},
		{name: "deny beats allow", out: `{"principalId":"p","policyDocument":{"Statement":[{"Action":"*","Effect":"Allow","Resource":"*"},{"Action":["execute-api:*"],"Effect":"Deny","Resource":["*"]}]}}`, status: 403},
		{name: "unauthorized", err: errors.New("Unauthorized"), status: 401},
		{name: "other error", err: errors.New("unauthorized"), status: 500},
		{name: "no principalId", out: `{"policyDocument":{"Statement":[{"Action":"*","Effect":"Allow","Resource":"*"}]}}`, status: 500},
		{name: "object in context", out: `{"principalId":"p","policyDocument":{"Statement":[{"Action":"*","Effect":"Allow","Resource":"*"}]},"context":{"o":{}}}`, status: 500},
		{name: "not json", out: `allow`, status: 500},
		{name: "over 8 KB", out: `{"principalId":"p","policyDocument":{"Statement":[{"Action":"*","Effect":"Allow","Resource":"*"}]},"context":{"s":"` + strings.Repeat("x", 8<<10) + `"}}`, status: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := &recorder{}
			authz := fn(func(_ context.Context, payload []byte) ([]byte, error) {
				var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
				if err := json.Unmarshal(payload, &ev); err != nil || ev.Type != "REQUEST" {
					return nil, fmt.Errorf("authorizer event %s: %v", payload, err)
				}
				return []byte(tt.out), tt.err
			})
			tg := start(t, Config{Authorizer: authz, Connect: conn})
			_, resp, err := tg.dial(t, "")
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				m := conn.of(eventConnect, "")[0].RequestContext.Authorizer.(map[string]any)
				if m["principalId"] != "p" || m["n"] != json.Number("1") || m["b"] != true || m["s"] != "x" {
					t.Errorf("authorizer context: got %v", m)
				}
				return
			}
			if err == nil || resp == nil || resp.StatusCode != tt.status {
				t.Fatalf("handshake: got %v (%v), want status %d", resp, err, tt.status)
			}
			if n := len(conn.of("", "")); n != 0 {
				t.Errorf("$connect/$disconnect called %d times for a refused handshake", n)
			}
		})
	}
}

func TestGateway_ConnectRefuses(t *testing.T) {
	conn := &recorder{answer: func(ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		if ev.QueryStringParameters["let"] == "me" {
			return events.APIGatewayProxyResponse{StatusCode: 204}, nil
		}
		return events.APIGatewayProxyResponse{StatusCode: 403}, nil
	}}
	tg := start(t, Config{Connect: conn})
	if _, resp, err := tg.dial(t, ""); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("refused handshake: got %v (%v), want 403", resp, err)
	}
	c := tg.mustDial(t, "?let=me")
	c.Close(websocket.StatusNormalClosure, "")
	eventually(t, "$disconnect", func() bool { return len(conn.of(eventDisconnect, "")) == 1 })
	if got, want := conn.of(eventDisconnect, "")[0].RequestContext.ConnectionID, conn.of(eventConnect, "")[1].RequestContext.ConnectionID; got != want {
		t.Errorf("$disconnect of %s, want the accepted connection %s (only)", got, want)
	}
}

func TestGateway_Messages(t *testing.T) {
	conn := &recorder{}
	route := &recorder{answer: func(ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		switch ev.Body {
		case "fail":
			return events.APIGatewayProxyResponse{}, errors.New("boom")
		case "silent":
			return events.APIGatewayProxyResponse{StatusCode: 200}, nil
		case "bin":
			return events.APIGatewayProxyResponse{StatusCode: 200, Body: base64.StdEncoding.EncodeToString([]byte{0, 1, 2}), IsBase64Encoded: true}, nil
		}
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: "echo:" + ev.Body + ":" + fmt.Sprint(ev.IsBase64Encoded)}, nil
	}}
	tg := start(t, Config{Connect: conn, Route: route})
	c := tg.mustDial(t, "")
	id := connID(t, conn)

	write(t, c, "text")
	if _, got := read(t, c); got != "echo:text:false" {
		t.Errorf("text reply: got %q", got)
	}
	if err := c.Write(context.Background(), websocket.MessageBinary, []byte{0xff, 0x00}); err != nil {
		t.Fatal(err)
	}
	if _, got := read(t, c); got != "echo:"+base64.StdEncoding.EncodeToString([]byte{0xff, 0x00})+":true" {
		t.Errorf("binary reply: got %q", got)
	}
	write(t, c, "bin")
	if typ, got := read(t, c); typ != websocket.MessageBinary || got != "\x00\x01\x02" {
		t.Errorf("base64 response: got %v %q, want binary 00 01 02", typ, got)
	}
	// A response without a body sends nothing: the next reply is the
	// next message's.
	write(t, c, "silent")
	write(t, c, "after")
	eventually(t, "both routed", func() bool { return len(route.of(eventMessage, id)) == 5 })
	if _, got := read(t, c); got != "echo:after:false" {
		t.Errorf("after a silent response: got %q", got)
	}

	write(t, c, "fail")
	_, got := read(t, c)
	var failed events.APIGatewayWebsocketProxyRequest
	for _, ev := range route.of(eventMessage, id) {
		if ev.Body == "fail" {
			failed = ev
		}
	}
	want := `{"message": "Internal server error", "connectionId":"` + id + `", "requestId":"` + failed.RequestContext.RequestID + `"}`
	if got != want {
		t.Errorf("failed invocation: got %s, want %s", got, want)
	}
	for _, ev := range route.of(eventMessage, id) {
		rc := ev.RequestContext
		if rc.RouteKey != "$default" || rc.MessageID == nil || rc.MessageID == rc.RequestID || !idPattern.MatchString(rc.RequestID) || rc.ConnectedAt == 0 {
			t.Errorf("MESSAGE context: got %+v", rc)
		}
		if rc.Authorizer != nil {
			t.Errorf("authorizer without an authorizer: got %v", rc.Authorizer)
		}
	}
}

func TestGateway_NoRoute(t *testing.T) {
	tg := start(t, Config{})
	c := tg.mustDial(t, "")
	write(t, c, "x")
	_, got := read(t, c)
	if !strings.HasPrefix(got, `{"message": "Forbidden", "connectionId":"`) {
		t.Errorf("message without $default: got %s", got)
	}
}

func TestGateway_IntegrationTimeout(t *testing.T) {
	route := fn(func(ctx context.Context, _ []byte) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	tg := start(t, Config{Route: route, IntegrationTimeout: 50 * time.Millisecond})
	c := tg.mustDial(t, "")
	write(t, c, "x")
	if _, got := read(t, c); !strings.HasPrefix(got, `{"message": "Endpoint request timed out", "connectionId":"`) {
		t.Errorf("timed out invocation: got %s", got)
	}
}

func TestGateway_MessageLimits(t *testing.T) {
	const kb = 1 << 10
	tests := []struct {
		name    string
		frames  []int // frame sizes of one message
		tooBig  bool
		clean   bool // the client sees a 1009 close frame, not a dropped connection
		message int  // for a config other than the defaults
	}{
		{name: "one frame of 32 KB", frames: []int{32 * kb}},
		{name: "one frame over 32 KB", frames: []int{32*kb + 1}, tooBig: true, clean: true},
		{name: "128 KB in frames of 32 KB", frames: []int{32 * kb, 32 * kb, 32 * kb, 32 * kb}},
		{name: "over 128 KB in frames of 32 KB", frames: []int{32 * kb, 32 * kb, 32 * kb, 32 * kb, 1}, tooBig: true, clean: true},
		{name: "continuation frame over 32 KB", frames: []int{kb, 40 * kb}, tooBig: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := &recorder{}
			route := &recorder{answer: func(ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
				return events.APIGatewayProxyResponse{StatusCode: 200, Body: fmt.Sprint(len(ev.Body))}, nil
			}}
			tg := start(t, Config{Connect: conn, Route: route})
			c := tg.mustDial(t, "")
			id := connID(t, conn)
			total := 0
			w, err := c.Writer(context.Background(), websocket.MessageText)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range tt.frames {
				total += n
				w.Write([]byte(strings.Repeat("a", n))) // one frame per Write; may fail once closed
			}
			w.Close()
			if !tt.tooBig {
				if _, got := read(t, c); got != fmt.Sprint(total) {
					t.Errorf("reply: got %s, want %d (the message's length)", got, total)
				}
				return
			}
			err = closeOf(t, c, 5*time.Second)
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("connection still open")
			}
			if tt.clean && websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
				t.Errorf("client saw %v, want close 1009", err)
			}
			eventually(t, "$disconnect", func() bool { return len(conn.of(eventDisconnect, id)) == 1 })
			if got := conn.of(eventDisconnect, id)[0].RequestContext.DisconnectStatusCode; got != 1009 {
				t.Errorf("disconnectStatusCode: got %d, want 1009", got)
			}
			if n := len(route.of(eventMessage, id)); n != 0 {
				t.Errorf("a message over the limit was routed (%d events)", n)
			}
		})
	}
}

func TestGateway_IdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	conn := &recorder{}
	tg := start(t, Config{Connect: conn, Route: &recorder{}, IdleTimeout: idle})

	quiet := tg.mustDial(t, "")
	quietID := connID(t, conn)
	busy := tg.mustDial(t, "")
	busyID := connID(t, conn)

	// busy sends a message every idle/3, for 3 idle timeouts: it stays.
	begin := time.Now()
	for time.Since(begin) < 3*idle {
		write(t, busy, "ping")
		read(t, busy)
		time.Sleep(idle / 3)
	}
	err := closeOf(t, quiet, 5*time.Second) // fails unless closed
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("idle client saw %v, want close 1001", err)
	}
	if len(conn.of(eventDisconnect, busyID)) != 0 {
		t.Error("a busy connection was closed as idle")
	}
	eventually(t, "$disconnect", func() bool { return len(conn.of(eventDisconnect, quietID)) == 1 })
	rc := conn.of(eventDisconnect, quietID)[0].RequestContext
	if rc.DisconnectStatusCode != 1001 || rc.DisconnectReason == nil || *rc.DisconnectReason != "Going away" {
		t.Errorf("$disconnect of an idle connection: got %d %v, want 1001 Going away", rc.DisconnectStatusCode, rc.DisconnectReason)
	}
}

func TestGateway_MaxLifetime(t *testing.T) {
	const life = 400 * time.Millisecond
	conn := &recorder{}
	tg := start(t, Config{Connect: conn, Route: &recorder{}, MaxLifetime: life})
	c := tg.mustDial(t, "")
	id := connID(t, conn)
	begin := time.Now()
	var err error
	for err == nil && time.Since(begin) < 10*life {
		if err = c.Write(context.Background(), websocket.MessageText, []byte("x")); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _, err = c.Read(ctx)
			cancel()
		}
		time.Sleep(life / 8)
	}
	if age := time.Since(begin); websocket.CloseStatus(err) != websocket.StatusGoingAway || age < life {
		t.Errorf("busy connection after %v: got %v, want close 1001 after %v", age, err, life)
	}
	eventually(t, "$disconnect", func() bool { return len(conn.of(eventDisconnect, id)) == 1 })
}

func TestGateway_DisconnectOnce(t *testing.T) {
	conn := &recorder{}
	tg := start(t, Config{Connect: conn})

	closed := tg.mustDial(t, "")
	closedID := connID(t, conn)
	dropped := tg.mustDial(t, "")
	droppedID := connID(t, conn)

	closed.Close(4000, "bye")
	dropped.CloseNow() // no close frame
	eventually(t, "both $disconnects", func() bool {
		return len(conn.of(eventDisconnect, closedID)) > 0 && len(conn.of(eventDisconnect, droppedID)) > 0
	})
	time.Sleep(100 * time.Millisecond) // room for a duplicate
	for _, tt := range []struct {
		id     string
		code   int64
		reason string
	}{{closedID, 4000, "bye"}, {droppedID, 1006, ""}} {
		evs := conn.of(eventDisconnect, tt.id)
		if len(evs) != 1 {
			t.Fatalf("$disconnect events of %s: got %d, want 1", tt.id, len(evs))
		}
		rc := evs[0].RequestContext
		if rc.RouteKey != "$disconnect" || rc.DisconnectStatusCode != tt.code || rc.DisconnectReason == nil || *rc.DisconnectReason != tt.reason {
			t.Errorf("$disconnect: got %s %d %v, want %d %q", rc.RouteKey, rc.DisconnectStatusCode, rc.DisconnectReason, tt.code, tt.reason)
		}
	}
	if n := len(tg.Conns()); n != 0 {
		t.Errorf("open connections after both ended: %d", n)
	}
}

func TestGateway_Shutdown(t *testing.T) {
	conn := &recorder{}
	g := New(Config{Connect: conn, Log: quietLog()})
	srv := httptest.NewServer(g)
	defer srv.Close()
	tg := &testGateway{Gateway: g, srv: srv, ws: "ws" + strings.TrimPrefix(srv.URL, "http") + "/"}
	const n = 5
	var clients []*websocket.Conn
	for range n {
		clients = append(clients, tg.mustDial(t, ""))
	}
	errs := make(chan error, n)
	for _, c := range clients {
		go func() {
			_, _, err := c.Read(context.Background())
			errs <- err
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// Shutdown returns after every $disconnect.
	if got := len(conn.of(eventDisconnect, "")); got != n {
		t.Errorf("$disconnect events after Shutdown: got %d, want %d", got, n)
	}
	for range n {
		if err := <-errs; websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Errorf("client saw %v, want close 1001", err)
		}
	}
	if _, resp, err := tg.dial(t, ""); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after Shutdown: got %v (%v), want 503", resp, err)
	}
}

func TestGateway_Fallback(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("page")) })
	tg := start(t, Config{Fallback: page})
	resp, err := http.Get(tg.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "page" {
		t.Errorf("plain GET /: got %q, want the fallback's page", b)
	}
	tg.mustDial(t, "") // an upgrade at the same path is the gateway's
	c, _, err := websocket.Dial(context.Background(), tg.ws+DefaultStage, nil)
	if err != nil {
		t.Fatalf("dial /{stage}: %v", err)
	}
	c.CloseNow()
}

func TestIsUpgrade(t *testing.T) {
	tests := []struct {
		connection, upgrade string
		want                bool
	}{
		{"Upgrade", "websocket", true},
		{"keep-alive, Upgrade", "WebSocket", true},
		{"keep-alive", "websocket", false},
		{"Upgrade", "h2c", false},
		{"", "", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Connection", tt.connection)
		r.Header.Set("Upgrade", tt.upgrade)
		if got := IsUpgrade(r); got != tt.want {
			t.Errorf("IsUpgrade(Connection: %q, Upgrade: %q): got %v, want %v", tt.connection, tt.upgrade, got, tt.want)
		}
	}
}
