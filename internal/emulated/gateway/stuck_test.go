package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
)

// TestGateway_Stuck: a connection Config.Stuck picks receives nothing;
// posts to it fill its queue and are throttled (429); after WriteTimeout
// it is dropped (1006, $disconnect) and posts are 410. Another
// connection is served as usual meanwhile.
func TestGateway_Stuck(t *testing.T) {
	conn := &recorder{}
	var asked atomic.Int32
	const writeTimeout = 300 * time.Millisecond
	tg := start(t, Config{Connect: conn, SendQueue: 2, WriteTimeout: writeTimeout,
		Stuck: func(string) bool { return asked.Add(1) == 1 }})
	stuck := tg.mustDial(t, "")
	stuckID := connID(t, conn)
	fine := tg.mustDial(t, "")
	fineID := connID(t, conn)

	api := tg.client()
	ctx := context.Background()
	post := func(id, msg string) error {
		_, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte(msg)})
		return err
	}
	begin := time.Now()
	var throttled *types.LimitExceededException
	for i := 0; ; i++ {
		err := post(stuckID, fmt.Sprint(i))
		if errors.As(err, &throttled) {
			break
		}
		if err != nil {
			t.Fatalf("post %d to the stuck connection: %v", i, err)
		}
		if i > 10 {
			t.Fatal("a stuck connection was never throttled")
		}
	}
	if err := post(fineID, "hello"); err != nil {
		t.Fatalf("post to the other connection: %v", err)
	}
	if _, got := read(t, fine); got != "hello" {
		t.Errorf("the other connection read %q", got)
	}

	err := closeOf(t, stuck, 5*time.Second)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("the stuck connection was not dropped")
	}
	if d := time.Since(begin); d < writeTimeout {
		t.Errorf("dropped after %v, before WriteTimeout %v", d, writeTimeout)
	}
	eventually(t, "$disconnect", func() bool { return len(conn.of(eventDisconnect, stuckID)) == 1 })
	if got := conn.of(eventDisconnect, stuckID)[0].RequestContext.DisconnectStatusCode; got != 1006 {
		t.Errorf("disconnectStatusCode %d, want 1006", got)
	}
	var gone *types.GoneException
	if err := post(stuckID, "late"); !errors.As(err, &gone) {
		t.Errorf("post after the drop: %v, want GoneException", err)
	}
	if n := asked.Load(); n != 2 {
		t.Errorf("Stuck asked %d times, want once per connection (2)", n)
	}
}
