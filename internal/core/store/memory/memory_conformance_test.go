package memory_test

import (
	"context"
	"testing"

	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/core/store/memory"
	"github.com/wsbind/wsbind/internal/testkit/storetest"
)

// reader gives the memory store the suite's ConnReader, so the suite
// checks what PutConn kept, and its SubscriptionLister, so it checks
// what a dropped connection leaves.
type reader struct{ *memory.Store }

func (r reader) Conn(_ context.Context, connID string) (store.Conn, bool, error) {
	e, ok := r.Store.Conn(connID)
	return e, ok, nil
}

func (r reader) ConnSubscriptions(_ context.Context, connID string) ([]store.Subscription, error) {
	topics := r.Store.Topics(connID)
	subs := make([]store.Subscription, len(topics))
	for i, topic := range topics {
		subs[i] = store.Subscription{Topic: topic, ConnID: connID}
	}
	return subs, nil
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) storetest.Backend { return reader{memory.New()} })
}

// TestSubscribe_WithoutPutConn: the memory store, unlike DynamoDB's, takes
// subscriptions of connections it never recorded (the unit tests'), and
// refuses only those of connections DropConn forgot.
func TestSubscribe_WithoutPutConn(t *testing.T) {
	s := memory.New()
	ctx := t.Context()
	sub := store.Subscription{Topic: "st#create", ConnID: "never-recorded"}
	if err := s.Subscribe(ctx, sub); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Subscribers(ctx, []string{sub.Topic}); err != nil || len(got) != 1 {
		t.Fatalf("Subscribers: got %+v, %v, want the subscription", got, err)
	}
	if err := s.DropConn(ctx, sub.ConnID); err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(ctx, sub); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Subscribers(ctx, []string{sub.Topic}); err != nil || len(got) != 0 {
		t.Fatalf("Subscribers after DropConn and a late Subscribe: got %+v, %v, want none", got, err)
	}
	// Disconnect drops the subscriptions only; the connection subscribes again.
	other := store.Subscription{Topic: "st#create", ConnID: "other"}
	if err := s.Subscribe(ctx, other); err != nil {
		t.Fatal(err)
	}
	s.Disconnect(other.ConnID)
	if err := s.Subscribe(ctx, other); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Subscribers(ctx, []string{sub.Topic}); err != nil || len(got) != 1 || got[0].ConnID != "other" {
		t.Fatalf("Subscribers after Disconnect and Subscribe: got %+v, %v, want other's", got, err)
	}
}
