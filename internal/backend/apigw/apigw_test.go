package apigw_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/wsbind/wsbind/internal/backend/apigw"
	"github.com/wsbind/wsbind/internal/backend/apigw/apigwtest"
)

// awsConfig is an explicit configuration: nothing comes from the
// machine's AWS_* variables or files.
func awsConfig() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	}
}

// opCounter counts PostToConnection operations as the SDK starts them
// (once per call, before its own retries), to tell the Poster's tries
// from the SDK's attempts, which the server counts.
type opCounter struct{ n atomic.Int64 }

func (c *opCounter) register(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("countOps",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.n.Add(1)
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

type poster struct {
	*apigw.Poster
	srv  *apigwtest.Server
	ops  *opCounter
	logs *bytes.Buffer
	mu   sync.Mutex
	gone []string
}

func (p *poster) goneCalls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.gone)
}

// newPoster starts a test endpoint and a Poster for it with the real SDK
// client; edit adjusts the Poster's config and aws.Config.
func newPoster(t *testing.T, opts apigwtest.Options, edit func(*apigw.Config, *aws.Config)) *poster {
	t.Helper()
	srv := apigwtest.New(opts)
	t.Cleanup(srv.Close)
	p := &poster{srv: srv, ops: &opCounter{}, logs: &bytes.Buffer{}}
	acfg := awsConfig()
	acfg.APIOptions = append(acfg.APIOptions, p.ops.register)
	cfg := apigw.Config{
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		OnGone: func(_ context.Context, id string) error {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.gone = append(p.gone, id)
			return nil
		},
		Log: slog.New(slog.NewTextHandler(p.logs, nil)),
	}
	if edit != nil {
		edit(&cfg, &acfg)
	}
	var err error
	if p.Poster, err = apigw.New(srv.Endpoint(), acfg, cfg); err != nil {
		t.Fatal(err)
	}
	return p
}

func conns(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%04d=", prefix, i) // API Gateway's ids end in "="
	}
	return ids
}

// checkReceived checks that every connection received exactly want.
func checkReceived(t *testing.T, srv *apigwtest.Server, ids []string, want ...[]byte) {
	t.Helper()
	bad := 0
	for _, id := range ids {
		got := srv.Received(id)
		if len(got) != len(want) || !slices.EqualFunc(got, want, bytes.Equal) {
			if bad++; bad <= 3 {
				t.Errorf("%s received %q, want %q", id, got, want)
			}
		}
	}
	if bad > 3 {
		t.Errorf("... and %d more connections", bad-3)
	}
}

func TestPoster_Post(t *testing.T) {
	p := newPoster(t, apigwtest.Options{}, nil)
	ids := append(conns("c", 500), "a/b=", "a b?#%", "ünï")
	p.srv.Connect(ids...)
	frame := []byte(`{"stream":"questions","payload":{"action":"update","pk":"q1"}}` + "\x00\xff")
	if err := p.Post(context.Background(), frame, ids); err != nil {
		t.Fatal(err)
	}
	checkReceived(t, p.srv, ids, frame)
	if st := p.srv.Stats(); st.Requests != len(ids) {
		t.Errorf("requests: got %d, want %d", st.Requests, len(ids))
	}
	if err := p.Post(context.Background(), frame, nil); err != nil {
		t.Errorf("post to no connection: %v", err)
	}
}

func TestPoster_Gone(t *testing.T) {
	p := newPoster(t, apigwtest.Options{}, nil)
	p.srv.Connect("c1", "c2")
	frame := []byte(`{"push":1}`)
	if err := p.Post(context.Background(), frame, []string{"c1", "gone1", "c2"}); err != nil {
		t.Fatalf("a gone connection is not an error: %v", err)
	}
	checkReceived(t, p.srv, []string{"c1", "c2"}, frame)
	if got := p.goneCalls(); !slices.Equal(got, []string{"gone1"}) {
		t.Errorf("cleanup calls: got %q, want [gone1]", got)
	}

	// A failing cleanup is logged, and the push still counts as delivered.
	p = newPoster(t, apigwtest.Options{}, func(c *apigw.Config, _ *aws.Config) {
		c.OnGone = func(context.Context, string) error { return errors.New("table unavailable") }
	})
	if err := p.Post(context.Background(), frame, []string{"gone2"}); err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	if !strings.Contains(p.logs.String(), "table unavailable") || !strings.Contains(p.logs.String(), "gone2") {
		t.Errorf("the failed cleanup is not logged: %s", p.logs)
	}
}

func TestPoster_Throttled(t *testing.T) {
	p := newPoster(t, apigwtest.Options{}, nil)
	p.srv.Connect("c1", "c2")
	p.srv.Inject("c1", apigwtest.Fault{Status: 429, Type: apigwtest.LimitExceeded, Times: 5})
	p.srv.Inject("c2", apigwtest.Fault{Status: 429, Times: 3}) // unmodeled 429
	frame := []byte(`{"push":2}`)
	if err := p.Post(context.Background(), frame, []string{"c1", "c2"}); err != nil {
		t.Fatal(err)
	}
	checkReceived(t, p.srv, []string{"c1", "c2"}, frame)
	// 6 tries for c1 and 4 for c2, each one request: the SDK did not
	// retry throttling on its own.
	if st, ops := p.srv.Stats(), p.ops.n.Load(); st.Requests != 10 || ops != 10 {
		t.Errorf("requests %d, operations %d; want 10 and 10", st.Requests, ops)
	}
}

func TestPoster_ServerError(t *testing.T) {
	p := newPoster(t, apigwtest.Options{}, nil)
	p.srv.Connect("c1", "c2")
	// A 503 twice: the SDK's own retries deliver it, in one operation.
	p.srv.Inject("c1", apigwtest.Fault{Status: 503, Times: 2})
	frame := []byte(`{"push":3}`)
	if err := p.Post(context.Background(), frame, []string{"c1"}); err != nil {
		t.Fatal(err)
	}
	checkReceived(t, p.srv, []string{"c1"}, frame)
	if st, ops := p.srv.Stats(), p.ops.n.Load(); st.Requests != 3 || ops != 1 {
		t.Errorf("requests %d, operations %d; want 3 and 1", st.Requests, ops)
	}

	// A 503 that lasts: an error after the SDK's 3 attempts, no more.
	p.srv.ResetStats()
	p.srv.Inject("c2", apigwtest.Fault{Status: 503})
	err := p.Post(context.Background(), frame, []string{"c1", "c2"})
	var perr *apigw.Error
	if !errors.As(err, &perr) || len(perr.Failed) != 1 || perr.Failed[0].ConnID != "c2" || perr.Total != 2 {
		t.Fatalf("got %v, want an *apigw.Error naming c2 only", err)
	}
	if st := p.srv.Stats(); st.Requests != 1+3 {
		t.Errorf("requests: got %d, want 4 (c1 once, c2 three times)", st.Requests)
	}
}

func TestPoster_Forbidden(t *testing.T) {
	p := newPoster(t, apigwtest.Options{}, nil)
	ids := conns("c", 20)
	p.srv.Connect(ids...)
	p.srv.Inject(ids[7], apigwtest.Fault{Status: 403, Type: apigwtest.Forbidden})
	frame := []byte(`{"push":4}`)
	err := p.Post(context.Background(), frame, ids)
	if err == nil {
		t.Fatal("got nil, want an error")
	}
	if !strings.Contains(err.Error(), ids[7]) || !strings.Contains(err.Error(), "1 of 20") {
		t.Errorf("error %q does not name %s as the one failure of 20", err, ids[7])
	}
	var fe *types.ForbiddenException
	if !errors.As(err, &fe) {
		t.Errorf("error %v: not a ForbiddenException", err)
	}
	ok := slices.Delete(slices.Clone(ids), 7, 8)
	checkReceived(t, p.srv, ok, frame)
	if p.ops.n.Load() != 20 {
		t.Errorf("operations: got %d, want 20 (a 403 is not retried)", p.ops.n.Load())
	}
}

// TestPoster_ErrorText: the error of a push that failed everywhere names a
// few connections and counts the rest.
func TestPoster_ErrorText(t *testing.T) {
	p := newPoster(t, apigwtest.Options{}, nil)
	ids := conns("c", 50)
	p.srv.Connect(ids...)
	p.srv.Inject(apigwtest.AnyConn, apigwtest.Fault{Status: 403, Type: apigwtest.Forbidden})
	err := p.Post(context.Background(), []byte("x"), ids)
	var perr *apigw.Error
	if !errors.As(err, &perr) || len(perr.Failed) != 50 {
		t.Fatalf("got %v, want 50 failures", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "50 of 50") || !strings.Contains(msg, "and 45 more") || len(msg) > 2000 {
		t.Errorf("error text: %s", msg)
	}
	for i, f := range perr.Failed {
		if f.ConnID != ids[i] {
			t.Fatalf("failure %d: got %s, want %s (the order Post was given)", i, f.ConnID, ids[i])
		}
	}
}

func TestPoster_Deadline(t *testing.T) {
	t.Run("slow endpoint", func(t *testing.T) {
		p := newPoster(t, apigwtest.Options{Latency: 10 * time.Second}, nil)
		ids := conns("c", 10)
		p.srv.Connect(ids...)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := p.Post(ctx, []byte("x"), ids)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("Post took %v past a 100 ms deadline", took)
		}
		var perr *apigw.Error
		if !errors.As(err, &perr) || len(perr.Failed) != 10 || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want all 10 failed by the deadline", err)
		}
	})
	t.Run("throttled for ever", func(t *testing.T) {
		p := newPoster(t, apigwtest.Options{}, nil)
		p.srv.Connect("c1", "c2")
		p.srv.Inject("c2", apigwtest.Fault{Status: 429, Type: apigwtest.LimitExceeded})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := p.Post(ctx, []byte("x"), []string{"c1", "c2"})
		took := time.Since(start)
		if took > 2*time.Second {
			t.Errorf("Post took %v past a 300 ms deadline", took)
		}
		if took < 200*time.Millisecond {
			t.Errorf("Post gave up after %v, before the deadline", took)
		}
		var perr *apigw.Error
		var le *types.LimitExceededException
		if !errors.As(err, &perr) || len(perr.Failed) != 1 || perr.Failed[0].ConnID != "c2" || !errors.As(err, &le) {
			t.Errorf("got %v, want c2 failed, throttled", err)
		}
		if n := p.srv.Stats().Requests; n < 10 {
			t.Errorf("requests: got %d, want c2 tried again and again", n)
		}
		checkReceived(t, p.srv, []string{"c1"}, []byte("x"))
	})
	t.Run("cancelled", func(t *testing.T) {
		p := newPoster(t, apigwtest.Options{}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := p.Post(ctx, []byte("x"), []string{"c1"})
		if !errors.Is(err, context.Canceled) || p.srv.Stats().Requests != 0 {
			t.Errorf("got %v after %d requests, want context.Canceled before any", err, p.srv.Stats().Requests)
		}
	})
}

// TestPoster_Concurrency measures requests in flight at the server: the
// bound holds, is reached, and holds across concurrent Posts.
func TestPoster_Concurrency(t *testing.T) {
	const bound = 8
	p := newPoster(t, apigwtest.Options{Latency: 10 * time.Millisecond}, func(c *apigw.Config, _ *aws.Config) { c.Concurrency = bound })
	ids := conns("c", 100)
	p.srv.Connect(ids...)
	if err := p.Post(context.Background(), []byte("x"), ids); err != nil {
		t.Fatal(err)
	}
	if got := p.srv.Stats().MaxInFlight; got != bound {
		t.Errorf("max in flight: got %d, want %d", got, bound)
	}

	p.srv.ResetStats()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = p.Post(context.Background(), []byte("y"), ids) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := p.srv.Stats().MaxInFlight; got != bound {
		t.Errorf("max in flight, 3 Posts at once: got %d, want %d", got, bound)
	}
	checkReceived(t, p.srv, ids, []byte("x"), []byte("y"), []byte("y"), []byte("y"))
}

// TestPoster_ConnectionPool: the Poster's client keeps a connection per
// request in flight, so that once warm, posting again opens (almost) no
// new ones. A client left with net/http's default pool (2 idle per host),
// as a contrast, opens about a connection per request in flight for
// every round: the measurement can tell the two apart.
func TestPoster_ConnectionPool(t *testing.T) {
	const bound, rounds = 32, 3
	latency := apigwtest.Options{Latency: 5 * time.Millisecond}
	ids := conns("c", 200)
	// warmNewConns is the TCP connections opened after the first round.
	warmNewConns := func(p *poster) int {
		p.srv.Connect(ids...)
		for i := range rounds {
			if i == 1 {
				p.srv.ResetStats()
			}
			if err := p.Post(context.Background(), []byte("x"), ids); err != nil {
				t.Fatal(err)
			}
		}
		return p.srv.Stats().NewConns
	}
	pooled := warmNewConns(newPoster(t, latency, func(c *apigw.Config, _ *aws.Config) { c.Concurrency = bound }))
	plain := warmNewConns(newPoster(t, latency, func(c *apigw.Config, a *aws.Config) { c.Concurrency = bound; a.HTTPClient = &http.Client{} }))
	t.Logf("connections opened in %d warm rounds of %d posts, %d in flight: %d pooled, %d with net/http's default pool", rounds-1, len(ids), bound, pooled, plain)
	if pooled > bound/4 {
		t.Errorf("pooled client: got %d new connections, want at most %d", pooled, bound/4)
	}
	if plain < bound {
		t.Errorf("contrast: net/http's default pool opened %d connections, want at least %d", plain, bound)
	}
}

func TestPoster_TooLarge(t *testing.T) {
	p := newPoster(t, apigwtest.Options{}, func(c *apigw.Config, _ *aws.Config) { c.Concurrency = 4 })
	ids := conns("c", 100)
	p.srv.Connect(ids...)
	frame := bytes.Repeat([]byte("a"), apigwtest.MaxPayload+1)
	if err := p.Post(context.Background(), frame, ids); err != nil {
		t.Fatalf("a push too large is dropped, not retried: got %v", err)
	}
	if n := p.srv.Stats().Requests; n > 4 {
		t.Errorf("requests: got %d, want at most 4 (the rest skipped after the first 413)", n)
	}
	if !strings.Contains(p.logs.String(), "too large") || !strings.Contains(p.logs.String(), "conns=100") {
		t.Errorf("log: got %q, want one line for the 100 connections", p.logs)
	}
	checkReceived(t, p.srv, ids) // nothing
}

func TestNew(t *testing.T) {
	for _, e := range []string{"", "not a url", "ftp://x/y", "https:///prod", "https://x.execute-api.us-east-1.amazonaws.com/prod?x=1", "%zz"} {
		if _, err := apigw.New(e, awsConfig(), apigw.Config{}); err == nil {
			t.Errorf("New(%q): got nil error", e)
		}
	}
	noRegion := awsConfig()
	noRegion.Region = ""
	if _, err := apigw.New("https://abc123.execute-api.eu-west-3.amazonaws.com/prod", noRegion, apigw.Config{}); err != nil {
		t.Errorf("region from the endpoint: %v", err)
	}
	if _, err := apigw.New("http://127.0.0.1:1/prod", noRegion, apigw.Config{}); err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("no region anywhere: got %v, want an error about the region", err)
	}
}
