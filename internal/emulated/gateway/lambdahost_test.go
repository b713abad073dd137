package gateway

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/coder/websocket"

	"github.com/wsbind/wsbind/bindings"
	"github.com/wsbind/wsbind/internal/aws/lambdahost"
	"github.com/wsbind/wsbind/internal/core/store/memory"
	"github.com/wsbind/wsbind/internal/sandbox/guest"
	"github.com/wsbind/wsbind/internal/sandbox/host"
	"github.com/wsbind/wsbind/resource"
)

// TestGateway_Lambdahost wires the real functions: the authorizer of
// internal/aws/auth, and the connect and route handlers of the host running
// the application's guest code natively over the memory store. What the
// functions read from the gateway's events (the user, the connection
// id, the frame) decides what they record and reply.
func TestGateway_Lambdahost(t *testing.T) {
	st := memory.New()
	svc := &host.Services{Store: st, Subscribers: st, Conns: st, Log: quietLog()}
	handler := func(name string) lambda.Handler {
		pool := host.NewPool(host.NativeModule(func(c guest.Caller) map[string]guest.Entry {
			return guest.All(c, bindings.Registry(resource.Settings{}))
		}), 4)
		t.Cleanup(func() { pool.Close(context.Background()) })
		h, err := lambdahost.New(lambdahost.Config{Function: name, Pool: pool, Services: svc})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	conn := &spy{Handler: handler(lambdahost.NameConnect)}
	tg := start(t, Config{Authorizer: authorizer(t), Connect: conn, Route: handler(lambdahost.NameRoute)})

	alice := tg.mustDial(t, "?token="+token(t, secret, "alice", time.Hour))
	aliceID := conn.last()
	anon := tg.mustDial(t, "")
	anonID := conn.last()

	if rec, ok := st.Conn(aliceID); !ok || rec.User.ID != "alice" {
		t.Errorf("alice's connection record: got %+v (%v), want user alice", rec, ok)
	}
	if rec, ok := st.Conn(anonID); !ok || rec.User.ID != "" {
		t.Errorf("anonymous connection record: got %+v (%v), want no user", rec, ok)
	}

	const create = `{"stream":"notes","payload":{"action":"create","data":{"text":"hi"},"request_id":"r1"}}`
	type reply struct {
		Stream  string
		Payload struct {
			Data           map[string]any
			ResponseStatus int    `json:"response_status"`
			RequestID      string `json:"request_id"`
		}
	}
	for _, tt := range []struct {
		name      string
		c         *websocket.Conn
		status    int
		wantOwner string
	}{
		{"alice", alice, 201, "alice"},
		{"anonymous", anon, 401, ""}, // notes are for authenticated users only
	} {
		write(t, tt.c, create)
		_, got := read(t, tt.c)
		var r reply
		if err := json.Unmarshal([]byte(got), &r); err != nil {
			t.Fatalf("%s: reply %s: %v", tt.name, got, err)
		}
		owner, _ := r.Payload.Data["owner"].(string)
		if r.Stream != "notes" || r.Payload.RequestID != "r1" || r.Payload.ResponseStatus != tt.status || owner != tt.wantOwner {
			t.Errorf("%s: got %s, want status %d and owner %q", tt.name, got, tt.status, tt.wantOwner)
		}
	}

	alice.Close(websocket.StatusNormalClosure, "")
	eventually(t, "alice's record dropped by $disconnect", func() bool {
		_, ok := st.Conn(aliceID)
		return !ok
	})
	if _, ok := st.Conn(anonID); !ok {
		t.Error("the other connection's record went too")
	}
}

// spy passes calls to a lambda.Handler and keeps the id of the last
// connection it saw connect.
type spy struct {
	lambda.Handler
	rec recorder
}

func (s *spy) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	s.rec.Invoke(ctx, payload)
	return s.Handler.Invoke(ctx, payload)
}

func (s *spy) last() string {
	evs := s.rec.of(eventConnect, "")
	if len(evs) == 0 {
		return ""
	}
	return evs[len(evs)-1].RequestContext.ConnectionID
}
