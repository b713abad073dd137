package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/coder/websocket"

	"github.com/wsbind/wsbind/internal/aws/apigw"
)

func TestGateway_ManagementAPI(t *testing.T) {
	conn := &recorder{}
	tg := start(t, Config{Connect: conn})
	c := tg.mustDial(t, "")
	id := connID(t, conn)
	api := tg.client()
	ctx := context.Background()

	// PostToConnection delivers, as a text frame.
	if _, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("push")}); err != nil {
		t.Fatalf("PostToConnection: %v", err)
	}
	if typ, got := read(t, c); typ != websocket.MessageText || got != "push" {
		t.Errorf("posted: got %v %q, want text push", typ, got)
	}
	// Exactly 128 KB passes; one byte more is PayloadTooLargeException.
	big := []byte(strings.Repeat("b", DefaultMaxMessageBytes))
	if _, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: big}); err != nil {
		t.Fatalf("PostToConnection of 128 KB: %v", err)
	}
	if _, got := read(t, c); len(got) != len(big) {
		t.Errorf("posted 128 KB: got %d bytes", len(got))
	}
	var large *types.PayloadTooLargeException
	if _, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: append(big, 'x')}); !errors.As(err, &large) {
		t.Errorf("PostToConnection over 128 KB: got %v, want PayloadTooLargeException", err)
	}

	// GetConnection describes it.
	info, err := api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
	if err != nil {
		t.Fatalf("GetConnection: %v", err)
	}
	connectedAt := time.UnixMilli(conn.of(eventConnect, id)[0].RequestContext.ConnectedAt)
	if info.ConnectedAt == nil || info.ConnectedAt.Sub(connectedAt).Abs() > time.Millisecond ||
		info.LastActiveAt == nil || info.LastActiveAt.Before(*info.ConnectedAt) || time.Since(*info.LastActiveAt) > 5*time.Second ||
		aws.ToString(info.Identity.SourceIp) != "127.0.0.1" || aws.ToString(info.Identity.UserAgent) != "gateway-test/1" {
		t.Errorf("GetConnection: got connectedAt %v lastActiveAt %v identity %s %s; connected at %v",
			info.ConnectedAt, info.LastActiveAt, aws.ToString(info.Identity.SourceIp), aws.ToString(info.Identity.UserAgent), connectedAt)
	}

	// DeleteConnection closes it, and $disconnect follows once.
	if _, err := api.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)}); err != nil {
		t.Fatalf("DeleteConnection: %v", err)
	}
	if err := closeOf(t, c, 5*time.Second); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("deleted client saw %v, want close 1000", err)
	}
	eventually(t, "$disconnect", func() bool { return len(conn.of(eventDisconnect, id)) > 0 })
	time.Sleep(50 * time.Millisecond)
	if evs := conn.of(eventDisconnect, id); len(evs) != 1 || evs[0].RequestContext.DisconnectStatusCode != 1000 {
		t.Errorf("$disconnect after DELETE: got %d events (%+v), want one with 1000", len(evs), evs)
	}

	// Gone now, for every operation.
	var gone *types.GoneException
	if _, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("x")}); !errors.As(err, &gone) {
		t.Errorf("PostToConnection after DELETE: got %v, want GoneException", err)
	}
	if _, err := api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)}); !errors.As(err, &gone) {
		t.Errorf("GetConnection after DELETE: got %v, want GoneException", err)
	}
	if _, err := api.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)}); !errors.As(err, &gone) {
		t.Errorf("DeleteConnection after DELETE: got %v, want GoneException", err)
	}
}

// TestGateway_PosterGone posts through the Poster the streamfanout host
// uses: a live connection receives, an unknown one is reported gone.
func TestGateway_PosterGone(t *testing.T) {
	conn := &recorder{}
	tg := start(t, Config{Connect: conn})
	c := tg.mustDial(t, "")
	id := connID(t, conn)
	var mu sync.Mutex
	var gone []string
	p, err := apigw.New(tg.ManagementEndpoint(tg.srv.URL), awsConfig(), apigw.Config{
		OnGone: func(_ context.Context, connID string) error {
			mu.Lock()
			defer mu.Unlock()
			gone = append(gone, connID)
			return nil
		},
		Log: quietLog(),
	})
	if err != nil {
		t.Fatal(err)
	}
	const unknown = "AAAAAAAAAAAAAAA="
	if err := p.Post(context.Background(), []byte(`{"push":1}`), []string{id, unknown}); err != nil {
		t.Fatalf("Post: %v", err)
	}
	if _, got := read(t, c); got != `{"push":1}` {
		t.Errorf("pushed: got %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(gone) != 1 || gone[0] != unknown {
		t.Errorf("gone connections: got %v, want [%s]", gone, unknown)
	}
}

// TestGateway_PostBeforeConnected posts while $connect still runs: API
// Gateway answers 410 until the connection is established.
func TestGateway_PostBeforeConnected(t *testing.T) {
	release := make(chan struct{})
	conn := &recorder{answer: func(ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		if ev.RequestContext.EventType == eventConnect {
			<-release
		}
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	}}
	tg := start(t, Config{Connect: conn})
	dialed := make(chan *websocket.Conn, 1)
	go func() {
		c, _, err := tg.dial(t, "")
		if err != nil {
			t.Errorf("dial: %v", err)
		}
		dialed <- c
	}()
	eventually(t, "$connect", func() bool { return len(conn.of(eventConnect, "")) == 1 })
	id := connID(t, conn)
	api := tg.client()
	var gone *types.GoneException
	if _, err := api.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("early")}); !errors.As(err, &gone) {
		t.Errorf("PostToConnection during $connect: got %v, want GoneException", err)
	}
	close(release)
	c := <-dialed
	if c == nil {
		return
	}
	if _, err := api.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("late")}); err != nil {
		t.Fatalf("PostToConnection once connected: %v", err)
	}
	if _, got := read(t, c); got != "late" {
		t.Errorf("received: got %q, want late (and never early)", got)
	}
}

func TestGateway_ManagementErrors(t *testing.T) {
	conn := &recorder{}
	tg := start(t, Config{Connect: conn})
	tg.mustDial(t, "")
	id := connID(t, conn)
	tests := []struct {
		name, method, path string
		signed             bool
		status             int
		errType            string
	}{
		{"unsigned", "POST", "/@connections/" + id, false, 403, errTypeForbidden},
		{"signed, no stage", "POST", "/@connections/" + id, true, 200, ""},
		{"signed, with stage", "GET", "/" + DefaultStage + "/@connections/" + id, true, 200, ""},
		{"escaped id", "GET", "/@connections/" + strings.ReplaceAll(id, "=", "%3D"), true, 200, ""},
		{"unknown id", "POST", "/@connections/AAAAAAAAAAAAAAA=", true, 410, errTypeGone},
		{"no id", "POST", "/@connections/", true, 404, errTypeNotFound},
		{"method", "PUT", "/@connections/" + id, true, 405, "MethodNotAllowedException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, tg.srv.URL+tt.path, strings.NewReader("x"))
			if tt.signed {
				req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status || resp.Header.Get("X-Amzn-ErrorType") != tt.errType {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), tt.status, tt.errType)
			}
		})
	}
}

// TestGateway_SlowClient fills a client's queue: posts to it are
// throttled (429), while posts to another client go through at once.
func TestGateway_SlowClient(t *testing.T) {
	conn := &recorder{}
	tg := start(t, Config{Connect: conn, SendQueue: 2, WriteTimeout: 5 * time.Second})
	tg.mustDial(t, "") // never reads
	slow := connID(t, conn)
	fast := tg.mustDial(t, "")
	fastID := connID(t, conn)
	api := tg.client()
	ctx := context.Background()
	frame := []byte(strings.Repeat("s", DefaultMaxMessageBytes))
	var throttled *types.LimitExceededException
	for i := 0; ; i++ {
		_, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(slow), Data: frame})
		if errors.As(err, &throttled) {
			break
		}
		if err != nil {
			t.Fatalf("post %d to the slow client: %v", i, err)
		}
		if i > 1000 {
			t.Fatal("a client that never reads was never throttled")
		}
	}
	begin := time.Now()
	for i := range 10 {
		msg := fmt.Sprint(i)
		if _, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(fastID), Data: []byte(msg)}); err != nil {
			t.Fatalf("post to the fast client: %v", err)
		}
		if _, got := read(t, fast); got != msg {
			t.Errorf("fast client: got %q, want %q", got, msg)
		}
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("posts to a fast client took %v while another was stuck", d)
	}
}
