package streams_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsbind/wsbind/bindings"
	"github.com/wsbind/wsbind/internal/aws/apigw"
	"github.com/wsbind/wsbind/internal/aws/dynamo"
	"github.com/wsbind/wsbind/internal/aws/lambdahost"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/emulated/dynamodblocal"
	"github.com/wsbind/wsbind/internal/emulated/streams"
	"github.com/wsbind/wsbind/internal/sandbox/guest"
	"github.com/wsbind/wsbind/internal/sandbox/host"
	"github.com/wsbind/wsbind/internal/testkit/apigwtest"
	"github.com/wsbind/wsbind/resource"
)

var tables = dynamo.Tables{Items: "items", Connections: "connections", Subscriptions: "subscriptions", Idempotency: "idempotency", History: "history"}

func awsConfig() aws.Config {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDLOCAL", "secret", ""),
		HTTPClient:  &http.Client{Transport: tr},
	}
}

// serve starts the DynamoDB endpoint on 127.0.0.1 with the three tables,
// and returns the items table's stream and a real SDK client.
func serve(t *testing.T) (*dynamodblocal.Stream, *dynamodb.Client) {
	t.Helper()
	db := dynamodblocal.New(dynamodblocal.Config{})
	srv := httptest.NewServer(db)
	t.Cleanup(srv.Close)
	c := dynamodb.NewFromConfig(awsConfig(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	if err := dynamo.CreateTables(t.Context(), c, tables); err != nil {
		t.Fatal(err)
	}
	st, ok := db.Stream(tables.Items)
	if !ok {
		t.Fatal("the items table has no stream")
	}
	return st, c
}

// put writes items with ids 00, 01, ... through the plain SDK.
func put(t *testing.T, c *dynamodb.Client, from, to int) []string {
	t.Helper()
	var ids []string
	for i := from; i < to; i++ {
		id := fmt.Sprintf("%02d", i)
		ids = append(ids, id)
		_, err := c.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: &tables.Items, Item: map[string]types.AttributeValue{
			"_stream": &types.AttributeValueMemberS{Value: "s"},
			"id":      &types.AttributeValueMemberS{Value: id},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// flaky is a function that processes the records of a batch in order
// and fails at record `poison` for its first `times` deliveries (forever
// when times < 0): with a batch item failure, or, when asError, by
// failing the invocation.
type flaky struct {
	poison  string
	times   int
	asError bool

	mu        sync.Mutex
	delivered []string   // ids processed, in order, repeats included
	batches   [][]string // ids of each invocation's batch
}

func (f *flaky) Invoke(_ context.Context, payload []byte) ([]byte, error) {
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, r := range ev.Records {
		ids = append(ids, r.Change.Keys["id"].String())
	}
	f.batches = append(f.batches, ids)
	resp := events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{}}
	for i, r := range ev.Records {
		if ids[i] == f.poison && f.times != 0 {
			f.times--
			if f.asError {
				return nil, errors.New("poisoned")
			}
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: r.Change.SequenceNumber})
			break
		}
		f.delivered = append(f.delivered, ids[i])
	}
	return json.Marshal(resp)
}

func (f *flaky) snapshot() (delivered []string, batches [][]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.delivered), slices.Clone(f.batches)
}

// waitFor polls until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// run runs a mapping until the test ends, and checks that it stops.
func run(t *testing.T, st streams.Source, h lambda.Handler, cfg streams.Config) {
	t.Helper()
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	m := streams.New(st, h, cfg)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
}

func TestMapping_PartialFailure(t *testing.T) {
	st, c := serve(t)
	ids := put(t, c, 0, 10)
	f := &flaky{poison: "03", times: 2}
	run(t, st, f, streams.Config{})
	waitFor(t, "all records", func() bool { d, _ := f.snapshot(); return len(d) >= len(ids) })
	delivered, batches := f.snapshot()
	// Records before a reported failure are done: nothing is delivered
	// twice, and the retries start at the failed record.
	if !slices.Equal(delivered, ids) {
		t.Errorf("delivered %q, want %q once each", delivered, ids)
	}
	if len(batches) != 3 || !slices.Equal(batches[0], ids) || !slices.Equal(batches[1], ids[3:]) || !slices.Equal(batches[2], ids[3:]) {
		t.Errorf("batches %q, want all, then twice from 03", batches)
	}
}

func TestMapping_FunctionError(t *testing.T) {
	st, c := serve(t)
	ids := put(t, c, 0, 6)
	f := &flaky{poison: "03", times: 2, asError: true}
	run(t, st, f, streams.Config{})
	waitFor(t, "all records", func() bool { d, _ := f.snapshot(); return len(d) >= 6+6 })
	delivered, batches := f.snapshot()
	// A failed invocation retries the whole batch: what the function did
	// before it failed is done again (at least once).
	want := slices.Concat(ids[:3], ids[:3], ids)
	if !slices.Equal(delivered, want) {
		t.Errorf("delivered %q, want %q", delivered, want)
	}
	for i, b := range batches {
		if !slices.Equal(b, ids) {
			t.Errorf("batch %d: %q, want the whole batch %q", i, b, ids)
		}
	}
}

func TestMapping_MaximumRetryAttempts(t *testing.T) {
	st, c := serve(t)
	ids := put(t, c, 0, 10)
	f := &flaky{poison: "03", times: -1}
	var mu sync.Mutex
	var failures []streams.Failure
	run(t, st, f, streams.Config{
		BatchSize:            7,
		MaximumRetryAttempts: 2,
		OnFailure: func(_ context.Context, fl streams.Failure) {
			mu.Lock()
			failures = append(failures, fl)
			mu.Unlock()
		},
	})
	waitFor(t, "the second batch", func() bool { d, _ := f.snapshot(); return len(d) >= 6 })
	delivered, batches := f.snapshot()
	// The batch's records from the poison on are given up after the first
	// attempt and two retries; the stream moves on.
	if want := slices.Concat(ids[:3], ids[7:]); !slices.Equal(delivered, want) {
		t.Errorf("delivered %q, want %q", delivered, want)
	}
	if len(batches) != 4 {
		t.Errorf("invocations: got %d (%q), want 3 of the first batch and 1 of the second", len(batches), batches)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failures) != 1 {
		t.Fatalf("OnFailure: got %d calls, want 1", len(failures))
	}
	var dropped []string
	for _, r := range failures[0].Records {
		dropped = append(dropped, r.Event.Change.Keys["id"].String())
	}
	if !slices.Equal(dropped, ids[3:7]) || failures[0].Attempts != 3 || failures[0].Err == nil {
		t.Errorf("OnFailure: got %q after %d attempts (%v), want %q after 3", dropped, failures[0].Attempts, failures[0].Err, ids[3:7])
	}
}

func TestMapping_Bisect(t *testing.T) {
	st, c := serve(t)
	ids := put(t, c, 0, 8)
	f := &flaky{poison: "03", times: -1, asError: true}
	dropped := make(chan []string, 10)
	run(t, st, f, streams.Config{
		MaximumRetryAttempts:       3,
		BisectBatchOnFunctionError: true,
		OnFailure: func(_ context.Context, fl streams.Failure) {
			var d []string
			for _, r := range fl.Records {
				d = append(d, r.Event.Change.Keys["id"].String())
			}
			dropped <- d
		},
	})
	select {
	case d := <-dropped:
		// Bisection isolates the poison record: only it is given up.
		if !slices.Equal(d, []string{"03"}) {
			t.Errorf("dropped %q, want only 03", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing was given up")
	}
	waitFor(t, "the records after the poison", func() bool {
		d, _ := f.snapshot()
		return len(d) >= 4 && slices.Equal(d[len(d)-4:], ids[4:])
	})
	delivered, _ := f.snapshot()
	for _, id := range ids {
		if id != "03" && !slices.Contains(delivered, id) {
			t.Errorf("%s was never delivered: %q", id, delivered)
		}
	}
	if slices.Contains(delivered, "03") {
		t.Errorf("the poison record was delivered: %q", delivered)
	}
}

// blocking is a function that holds its invocation until released.
type blocking struct {
	started  chan struct{}
	release  chan struct{}
	finished chan error // the invocation context's error when it ended
}

func (b *blocking) Invoke(ctx context.Context, _ []byte) ([]byte, error) {
	close(b.started)
	<-b.release
	b.finished <- ctx.Err()
	return nil, nil
}

// Stopping the mapping lets the invocation in progress end on its own,
// then Run returns.
func TestMapping_StopDuringInvocation(t *testing.T) {
	st, c := serve(t)
	put(t, c, 0, 1)
	b := &blocking{started: make(chan struct{}), release: make(chan struct{}), finished: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- streams.New(st, b, streams.Config{}).Run(ctx) }()
	<-b.started
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) during an invocation", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(b.release)
	if err := <-b.finished; err != nil {
		t.Errorf("the invocation's context ended with the mapping's: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

// Batching: records written in one burst arrive in one invocation, at
// most BatchSize at a time, in order.
func TestMapping_BatchSize(t *testing.T) {
	st, c := serve(t)
	ids := put(t, c, 0, 25)
	f := &flaky{}
	run(t, st, f, streams.Config{BatchSize: 10})
	waitFor(t, "all records", func() bool { d, _ := f.snapshot(); return len(d) >= len(ids) })
	delivered, batches := f.snapshot()
	if !slices.Equal(delivered, ids) {
		t.Errorf("delivered %q, want %q", delivered, ids)
	}
	var sizes []int
	for _, b := range batches {
		sizes = append(sizes, len(b))
	}
	if !slices.Equal(sizes, []int{10, 10, 5}) {
		t.Errorf("batch sizes %v, want [10 10 5]", sizes)
	}
}

// The real streamfanout function (the guest linked natively, in the
// same host code as on Lambda) pushes the changes written to the
// emulator's DynamoDB through the management API to a subscriber.
func TestMapping_StreamFanout(t *testing.T) {
	st, c := serve(t)
	db := dynamo.New(dynamo.Config{Client: c, Tables: tables})
	gw := apigwtest.New(apigwtest.Options{})
	t.Cleanup(gw.Close)
	poster, err := apigw.New(gw.Endpoint(), awsConfig(), apigw.Config{OnGone: db.DropConn})
	if err != nil {
		t.Fatal(err)
	}
	program := func(c guest.Caller) map[string]guest.Entry {
		return guest.All(c, bindings.Registry(resource.Settings{}))
	}
	pool := host.NewPool(host.NativeModule(program), 1)
	t.Cleanup(func() { pool.Close(context.Background()) })
	h, err := lambdahost.New(lambdahost.Config{Function: lambdahost.NameStreamFanout, Pool: pool, Services: &host.Services{
		Store: db, Subscribers: db, Conns: db, Poster: poster,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := db.PutConn(ctx, store.Conn{ConnID: "c1"}); err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"create", "update"} {
		if err := db.Subscribe(ctx, store.Subscription{Topic: store.Topic("questions", action, ""), ConnID: "c1"}); err != nil {
			t.Fatal(err)
		}
	}
	gw.Connect("c1")
	run(t, st, h, streams.Config{})
	obj := func(text string) []byte {
		return []byte(`{"id":"q1","question_text":"` + text + `","pub_date":"2026-01-02T03:04:05Z","published":false}`)
	}
	if err := db.Create(ctx, store.Part{Stream: "questions"}, store.Item{ID: "q1", Data: obj("Why?")}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Replace(ctx, store.Part{Stream: "questions"}, store.Item{ID: "q1", Version: 1, Data: obj("Why not?")}); err != nil {
		t.Fatal(err)
	}
	var got []string
	waitFor(t, "two pushes", func() bool {
		got = got[:0]
		for _, b := range gw.Received("c1") {
			got = append(got, string(b))
		}
		return len(got) >= 2
	})
	want := []string{`"action":"create"`, `"action":"update"`}
	texts := []string{`"question_text":"Why?"`, `"question_text":"Why not?"`}
	for i := range want {
		if !strings.Contains(got[i], want[i]) || !strings.Contains(got[i], texts[i]) || !strings.Contains(got[i], `"pk":"q1"`) {
			t.Errorf("push %d: got %s, want %s of q1 with %s", i, got[i], want[i], texts[i])
		}
	}
	if len(got) != 2 {
		t.Errorf("pushes: got %d, want 2: %q", len(got), got)
	}
}
