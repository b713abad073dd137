package fanout_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/wsbind/wsbind/internal/aws/apigw"
	"github.com/wsbind/wsbind/internal/aws/fanout"
	"github.com/wsbind/wsbind/internal/aws/lambdahost"
	"github.com/wsbind/wsbind/internal/sandbox/host"
	"github.com/wsbind/wsbind/internal/testkit/apigwtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func awsConfig(hc aws.HTTPClient) aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""), HTTPClient: hc}
}

// poster is an apigw Poster to srv, paced by lim when not nil.
func poster(t testing.TB, srv *apigwtest.Server, lim *fanout.Limiter) *apigw.Poster {
	t.Helper()
	var hc aws.HTTPClient
	if lim != nil {
		hc = &fanout.Client{Inner: apigw.PoolClient(nil, apigw.DefaultConcurrency), Limiter: lim}
	}
	p, err := apigw.New(srv.Endpoint(), awsConfig(hc), apigw.Config{Log: quiet, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// system is a parent Chunker over workers push workers, each with its
// own apigw Poster, all posting to one management endpoint.
type system struct {
	srv     *apigwtest.Server
	chunker *fanout.Chunker
	inv     *countingInvoker
	ids     []string
}

// countingInvoker counts invocations and the connections each carried.
type countingInvoker struct {
	inner fanout.Invoker
	mu    sync.Mutex
	calls int
	conns []int
}

func (c *countingInvoker) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	c.mu.Lock()
	c.calls++
	c.conns = append(c.conns, strings.Count(string(payload), `"c-`))
	c.mu.Unlock()
	return c.inner.Invoke(ctx, payload)
}

func newSystem(t *testing.T, n, workers, threshold int) *system {
	t.Helper()
	srv := apigwtest.New(apigwtest.Options{Latency: time.Millisecond})
	t.Cleanup(srv.Close)
	var hs []lambda.Handler
	for range workers {
		hs = append(hs, lambdahost.NewPush(&fanout.Worker{Poster: poster(t, srv, nil), Log: quiet}, quiet, ""))
	}
	inv := &countingInvoker{inner: fanout.NewLocalInvoker(time.Minute, hs...)}
	c, err := fanout.NewChunker(fanout.Config{Local: poster(t, srv, nil), Invoker: inv, Workers: workers, Threshold: threshold, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	s := &system{srv: srv, chunker: c, inv: inv}
	for i := range n {
		s.ids = append(s.ids, fmt.Sprintf("c-%04d=", i))
	}
	srv.Connect(s.ids...)
	return s
}

// check fails unless every connection received frames, exactly, in order.
func (s *system) check(t *testing.T, frames ...string) {
	t.Helper()
	bad := 0
	for _, id := range s.ids {
		var got []string
		for _, b := range s.srv.Received(id) {
			got = append(got, string(b))
		}
		if !slices.Equal(got, frames) {
			if bad++; bad <= 3 {
				t.Errorf("%s received %q, want %q", id, got, frames)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d connections did not receive each push once, in order", bad, len(s.ids))
	}
}

// Two successive changes' pushes reach every connection in order, even
// when the first is throttled for some and waits in a worker's lane: the
// worker answers only once its lanes are empty, so the second Post cannot
// overtake.
func TestChunker_OrderAcrossChanges(t *testing.T) {
	s := newSystem(t, 300, 4, 50)
	for i := 0; i < len(s.ids); i += 7 {
		s.srv.Inject(s.ids[i], apigwtest.Fault{Status: 429, Type: apigwtest.LimitExceeded, Times: 3, Method: "POST"})
	}
	ctx := context.Background()
	for _, f := range []string{"one", "two"} {
		if err := s.chunker.Post(ctx, []byte(f), s.ids); err != nil {
			t.Fatal(err)
		}
	}
	s.check(t, "one", "two")
	if s.inv.calls < 2*4 {
		t.Errorf("%d invocations for two Posts to 300 over 4 workers, want at least 8", s.inv.calls)
	}
}

// A connection a worker could not reach (403 once: apigw's Poster does
// not retry it) is tried again by the parent, and it alone: every
// connection gets the push once, and the endpoint sees one request per
// connection plus one per failure.
func TestChunker_RetriesOnlyFailed(t *testing.T) {
	s := newSystem(t, 400, 3, 40)
	failing := 0
	for i := 0; i < len(s.ids); i += 13 {
		s.srv.Inject(s.ids[i], apigwtest.Fault{Status: 403, Type: apigwtest.Forbidden, Times: 1})
		failing++
	}
	if err := s.chunker.Post(context.Background(), []byte("x"), s.ids); err != nil {
		t.Fatal(err)
	}
	s.check(t, "x")
	if got, want := s.srv.Stats().Requests, len(s.ids)+failing; got != want {
		t.Errorf("requests: got %d, want %d (one per connection, one more per failure)", got, want)
	}
}

// Connections still failing after the rounds are named in the error:
// by the workers' *Error when many are, by the local Poster's when they
// are few enough to be retried locally.
func TestChunker_GivesUp(t *testing.T) {
	s := newSystem(t, 300, 3, 40)
	var failing []string
	for i := 0; i < 100; i += 2 {
		s.srv.Inject(s.ids[i], apigwtest.Fault{Status: 403, Type: apigwtest.Forbidden})
		failing = append(failing, s.ids[i])
	}
	err := s.chunker.Post(context.Background(), []byte("x"), s.ids)
	var fe *fanout.Error
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want a *fanout.Error", err)
	}
	slices.Sort(fe.Failed)
	if !slices.Equal(fe.Failed, failing) || fe.Total != 300 || !strings.Contains(err.Error(), "ForbiddenException") {
		t.Fatalf("got %v (%d failed), want the %d failing connections and why", err, len(fe.Failed), len(failing))
	}
	// A third of the connections less those failing got it once.
	s.ids = s.ids[100:]
	s.check(t, "x")

	s2 := newSystem(t, 300, 3, 40)
	s2.srv.Inject(s2.ids[5], apigwtest.Fault{Status: 403, Type: apigwtest.Forbidden})
	err = s2.chunker.Post(context.Background(), []byte("x"), s2.ids)
	var ae *apigw.Error
	if !errors.As(err, &ae) || len(ae.Failed) != 1 || ae.Failed[0].ConnID != s2.ids[5] {
		t.Fatalf("got %v, want the local Poster's error naming %s", err, s2.ids[5])
	}
}

// A small Post stays local: no invocation.
func TestChunker_SmallIsLocal(t *testing.T) {
	s := newSystem(t, 40, 3, 40)
	if err := s.chunker.Post(context.Background(), []byte("x"), s.ids); err != nil {
		t.Fatal(err)
	}
	s.check(t, "x")
	if s.inv.calls != 0 {
		t.Errorf("%d invocations for 40 connections at threshold 40", s.inv.calls)
	}
}

// The Chunker's counts are its own process's posts: a small push's, not
// the chunks' its workers made (they report those in their own lines).
func TestChunker_PushCounts(t *testing.T) {
	s := newSystem(t, 300, 3, 100)
	if err := s.chunker.Post(context.Background(), []byte("small"), s.ids[:40]); err != nil {
		t.Fatal(err)
	}
	if err := s.chunker.Post(context.Background(), []byte("big"), s.ids); err != nil {
		t.Fatal(err)
	}
	if s.inv.calls == 0 {
		t.Fatal("the push to 300 connections was not chunked")
	}
	if got := s.chunker.PushCounts(); got != (host.PushCounts{Posted: 40}) {
		t.Errorf("counts %+v, want the 40 local posts only", got)
	}
}

// An invocation that fails leaves its chunk in doubt: Post says so.
func TestChunker_InvocationFails(t *testing.T) {
	boom := errors.New("boom")
	c, err := fanout.NewChunker(fanout.Config{Local: nopPoster{}, Invoker: invokerFunc(func(context.Context, []byte) ([]byte, error) { return nil, boom }),
		Workers: 2, Threshold: 10, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprint("c", i)
	}
	if err := c.Post(context.Background(), []byte("x"), ids); !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
}

type invokerFunc func(context.Context, []byte) ([]byte, error)

func (f invokerFunc) Invoke(ctx context.Context, p []byte) ([]byte, error) { return f(ctx, p) }

type nopPoster struct{}

func (nopPoster) Post(context.Context, []byte, []string) error { return nil }

// Chunks respect the payload limit and the workers' concurrency; every
// connection is in exactly one chunk.
func TestChunker_Chunks(t *testing.T) {
	var inFlight, most atomic.Int64
	var mu sync.Mutex
	seen := map[string]int{}
	calls := 0
	const limit = 4000
	inv := invokerFunc(func(_ context.Context, p []byte) ([]byte, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		if len(p) > limit {
			return nil, fmt.Errorf("payload %d > %d", len(p), limit)
		}
		var req fanout.Request
		if err := jsonUnmarshal(p, &req); err != nil {
			return nil, err
		}
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		calls++
		for _, id := range req.Conns {
			seen[id]++
		}
		mu.Unlock()
		return []byte(`{"failed":[]}`), nil
	})
	c, err := fanout.NewChunker(fanout.Config{Local: nopPoster{}, Invoker: inv, Workers: 3, Threshold: 10, MaxPayload: limit, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 2000)
	for i := range ids {
		ids[i] = fmt.Sprintf("conn<%d>", i) // escaped by JSON: 6 bytes each for < and >
	}
	if err := c.Post(context.Background(), []byte(strings.Repeat("f", 1000)), ids); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("%s in %d chunks", id, seen[id])
		}
	}
	if most.Load() > 3 {
		t.Errorf("%d invocations at once, want at most 3", most.Load())
	}
	if calls < 2000*20/limit {
		t.Errorf("%d chunks: too few to fit %d bytes each", calls, limit)
	}
}

func TestNewChunker_Errors(t *testing.T) {
	for _, tc := range []struct {
		cfg  fanout.Config
		want string
	}{
		{fanout.Config{}, "no local Poster"},
		{fanout.Config{Local: nopPoster{}, Invoker: invokerFunc(nil)}, "0 push workers"},
		{fanout.Config{Local: nopPoster{}, Threshold: -1}, "chunk threshold -1"},
	} {
		if _, err := fanout.NewChunker(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// The worker refuses an event that is not a push request.
func TestWorker_RefusesOtherEvents(t *testing.T) {
	w := &fanout.Worker{Poster: nil, Log: quiet}
	for _, p := range []string{`{"Records":[]}`, `not json`} {
		if _, err := w.Serve(context.Background(), []byte(p)); err == nil || !strings.Contains(err.Error(), "not a push request") {
			t.Errorf("%s: got %v", p, err)
		}
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
