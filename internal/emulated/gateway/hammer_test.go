package gateway

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/coder/websocket"

	"github.com/wsbind/wsbind/internal/aws/apigw"
)

// TestGateway_Hammer runs many connections at once, each sending
// messages while pushes to all of them are posted, and checks that every
// reply and every push arrives exactly once and every connection gets
// exactly one $disconnect.
func TestGateway_Hammer(t *testing.T) {
	conns, messages, pushes := 200, 10, 5
	if testing.Short() {
		conns = 50
	}
	conn, route := &recorder{}, &recorder{}
	tg := start(t, Config{Authorizer: authorizer(t), Connect: conn, Route: route, SendQueue: 256})
	poster, err := apigw.New(tg.ManagementEndpoint(tg.srv.URL), awsConfig(), apigw.Config{Concurrency: 64, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}

	clients := make([]*websocket.Conn, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			query := fmt.Sprint("?i=", i)
			if i%2 == 0 {
				query += "&token=" + token(t, secret, fmt.Sprint("user", i), time.Hour)
			}
			c, _, err := tg.dial(t, query)
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				return
			}
			clients[i] = c
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	ids := make([]string, conns) // by client
	for _, ev := range conn.of(eventConnect, "") {
		i, _ := strconv.Atoi(ev.QueryStringParameters["i"])
		ids[i] = ev.RequestContext.ConnectionID
	}
	if n := len(conn.of(eventConnect, "")); n != conns || len(tg.Conns()) != conns {
		t.Fatalf("connections: %d $connect events, %d open; want %d", n, len(tg.Conns()), conns)
	}

	// Each client reads everything it is owed while it sends.
	received := make([]map[string]int, conns)
	for i, c := range clients {
		received[i] = map[string]int{}
		wg.Go(func() {
			for range messages {
				if err := c.Write(context.Background(), websocket.MessageText, fmt.Appendf(nil, "m%d", i)); err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for range messages + pushes {
				_, b, err := c.Read(ctx)
				if err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				received[i][string(b)]++
			}
		})
	}
	for p := range pushes {
		wg.Go(func() {
			if err := poster.Post(context.Background(), fmt.Appendf(nil, "push%d", p), ids); err != nil {
				t.Errorf("push %d: %v", p, err)
			}
		})
	}
	wg.Wait()
	for i, got := range received {
		if got[fmt.Sprint("echo:m", i)] != messages {
			t.Errorf("client %d: got %v, want %d replies", i, got, messages)
		}
		for p := range pushes {
			if got[fmt.Sprint("push", p)] != 1 {
				t.Errorf("client %d: push%d received %d times, want once", i, p, got[fmt.Sprint("push", p)])
			}
		}
	}
	if n := len(route.of(eventMessage, "")); n != conns*messages {
		t.Errorf("MESSAGE events: got %d, want %d", n, conns*messages)
	}

	// Half close themselves, the other half are deleted.
	api := tg.client()
	for i, c := range clients {
		wg.Go(func() {
			if i%2 == 0 {
				c.Close(websocket.StatusNormalClosure, "")
				return
			}
			in := &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(ids[i])}
			if _, err := api.DeleteConnection(context.Background(), in); err != nil {
				t.Errorf("delete %s: %v", ids[i], err)
			}
			// The client reads, so it answers the close handshake.
			if err := closeOf(t, c, 10*time.Second); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Errorf("deleted client %d saw %v, want close 1000", i, err)
			}
		})
	}
	wg.Wait()
	eventually(t, "every $disconnect", func() bool { return len(conn.of(eventDisconnect, "")) >= conns })
	time.Sleep(50 * time.Millisecond)
	count := map[string]int{}
	for _, ev := range conn.of(eventDisconnect, "") {
		count[ev.RequestContext.ConnectionID]++
	}
	for _, id := range ids {
		if count[id] != 1 {
			t.Errorf("$disconnect of %s: %d times, want once", id, count[id])
		}
	}
	if len(count) != conns {
		t.Errorf("$disconnect events for %d connections, want %d", len(count), conns)
	}
	// The users travelled with their connections.
	for _, ev := range route.of(eventMessage, "") {
		m := ev.RequestContext.Authorizer.(map[string]any)
		sub, _ := m["sub"].(string)
		i, _ := strconv.Atoi(strings.TrimPrefix(ev.Body, "m"))
		if want := "user" + strconv.Itoa(i); (i%2 == 0 && sub != want) || (i%2 == 1 && sub != "") {
			t.Errorf("message %q from user %q", ev.Body, sub)
		}
	}
}
