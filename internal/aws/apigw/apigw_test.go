package apigw_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/wsbind/wsbind/internal/aws/apigw"
	"github.com/wsbind/wsbind/internal/sandbox/host"
	"github.com/wsbind/wsbind/internal/testkit/apigwtest"
)

// awsConfig is an explicit configuration: nothing comes from the
// machine's AWS_* variables or files.
func awsConfig() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	}
}

// tryLog records the Poster's tries as it makes them (apigw.OnTry):
// their number, to tell them from the requests the server counts (no
// layer below the Poster may retry on its own), and their frames by
// connection, in the order the Poster tried them.
type tryLog struct {
	mu    sync.Mutex
	n     int
	tries map[string][]string
}

func (l *tryLog) record(id string, frame []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	l.tries[id] = append(l.tries[id], string(frame))
}

func (l *tryLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func (l *tryLog) of(id string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.tries[id])
}

// syncBuffer is a log destination that lanes write to while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type poster struct {
	*apigw.Poster
	srv   *apigwtest.Server
	posts *tryLog
	logs  *syncBuffer
	mu    sync.Mutex
	gone  []string
}

func (p *poster) goneCalls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.gone)
}

// stuckClosed reports that a stuck connection's lane is over: closed,
// handed to OnGone, logged.
func (p *poster) stuckClosed() bool {
	return p.Pending() == 0 && len(p.goneCalls()) > 0 && strings.Contains(p.logs.String(), "stuck connection closed")
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// sdkPostsEnv set to 1 runs the Poster's tests with posts made by the
// SDK's client (apigw.UseSDKPosts), as they were before the Poster signed
// them itself.
const sdkPostsEnv = "WSBIND_APIGW_SDK_POSTS"

// testCreds are awsConfig's credentials, which the test endpoints check
// every request's signature against.
var testCreds = aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}

// newPoster starts a test endpoint that checks signatures and a Poster for
// it with the real SDK configuration; edit adjusts the Poster's config
// and aws.Config.
func newPoster(t *testing.T, opts apigwtest.Options, edit func(*apigw.Config, *aws.Config)) *poster {
	t.Helper()
	opts.Credentials = &testCreds
	srv := apigwtest.New(opts)
	t.Cleanup(srv.Close)
	p := &poster{srv: srv, posts: &tryLog{tries: map[string][]string{}}, logs: &syncBuffer{}}
	acfg := awsConfig()
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
	apigw.OnTry(p.Poster, p.posts.record)
	if os.Getenv(sdkPostsEnv) == "1" {
		apigw.UseSDKPosts(p.Poster)
	}
	t.Cleanup(p.Close) // before srv.Close: cleanups run last first
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

// TestPoster_Throttled: a throttled push is retried in its connection's
// lane; Post does not wait for it, Flush does.
func TestPoster_Throttled(t *testing.T) {
	p := newPoster(t, apigwtest.Options{}, func(c *apigw.Config, _ *aws.Config) { c.FlushWait = 10 * time.Second })
	p.srv.Connect("c1", "c2")
	p.srv.Inject("c1", apigwtest.Fault{Status: 429, Type: apigwtest.LimitExceeded, Times: 5})
	p.srv.Inject("c2", apigwtest.Fault{Status: 429, Times: 3}) // unmodeled 429
	frame := []byte(`{"push":2}`)
	if err := p.Post(context.Background(), frame, []string{"c1", "c2"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := p.Pending(); n != 0 {
		t.Errorf("pending after Flush: %d", n)
	}
	checkReceived(t, p.srv, []string{"c1", "c2"}, frame)
	// 6 tries for c1 and 4 for c2, each one request: nothing below the
	// Poster (the SDK, net/http) retried throttling on its own.
	if st, ops := p.srv.Stats(), p.posts.count(); st.Requests != 10 || ops != 10 {
		t.Errorf("requests %d, tries %d; want 10 and 10", st.Requests, ops)
	}
}

// TestPoster_ThrottledConnDoesNotHoldOthers: one client that never reads
// (every post to it throttled) among 50 does not hold Post up; once its
// lane has been failing for the patience, its connection is closed and
// handed to OnGone. (Post used to back off from it until ctx ended.)
func TestPoster_ThrottledConnDoesNotHoldOthers(t *testing.T) {
	const patience = 2 * time.Second
	p := newPoster(t, apigwtest.Options{}, func(c *apigw.Config, _ *aws.Config) {
		c.Patience = patience
		c.MinBackoff, c.MaxBackoff = 5*time.Millisecond, 50*time.Millisecond
	})
	ids := conns("c", 50)
	p.srv.Connect(ids...)
	stuck := ids[17]
	p.srv.Inject(stuck, apigwtest.Fault{Status: 429, Type: apigwtest.LimitExceeded, Method: http.MethodPost})
	frame := []byte(`{"push":"hol"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 3*patience)
	defer cancel()
	start := time.Now()
	err := p.Post(ctx, frame, ids)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if took > patience/2 {
		t.Errorf("Post took %v, want well under the %v patience", took, patience)
	}
	if n := p.Pending(); n != 1 || len(p.goneCalls()) != 0 {
		t.Errorf("right after Post: pending %d, gone %q; want 1 and none", n, p.goneCalls())
	}
	checkReceived(t, p.srv, slices.Delete(slices.Clone(ids), 17, 18), frame)

	waitFor(t, "the stuck connection to be closed", p.stuckClosed)
	if waited := time.Since(start); waited < patience {
		t.Errorf("given up after %v, before the %v patience", waited, patience)
	}
	if got := p.srv.Deleted(); !slices.Equal(got, []string{stuck}) {
		t.Errorf("deleted: got %q, want [%s]", got, stuck)
	}
	if got := p.goneCalls(); !slices.Equal(got, []string{stuck}) {
		t.Errorf("OnGone: got %q, want [%s]", got, stuck)
	}
	logs := p.logs.String()
	if strings.Count(logs, "level=WARN") != 1 || !strings.Contains(logs, stuck) || !strings.Contains(logs, "dropped=1") ||
		!strings.Contains(logs, "LimitExceededException") {
		t.Errorf("want one warn line naming %s, 1 push dropped and the last error:\n%s", stuck, logs)
	}
	if n := len(p.posts.of(stuck)); n < 5 {
		t.Errorf("tries of the stuck connection: %d, want it retried again and again", n)
	}
}

// TestPoster_LaneOrder: pushes to a connection whose first tries are
// throttled reach it in order, once each: later Posts queue behind its
// lane rather than overtake it.
func TestPoster_LaneOrder(t *testing.T) {
	p := newPoster(t, apigwtest.Options{}, func(c *apigw.Config, _ *aws.Config) {
		c.MinBackoff, c.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
		c.FlushWait = 10 * time.Second
	})
	p.srv.Connect("c1", "c2")
	p.srv.Inject("c1", apigwtest.Fault{Status: 429, Type: apigwtest.LimitExceeded, Times: 3})
	var frames [][]byte
	var want []string
	for i := range 5 {
		f := fmt.Appendf(nil, `{"push":%d}`, i)
		frames = append(frames, f)
		want = append(want, string(f))
		if err := p.Post(context.Background(), f, []string{"c1", "c2"}); err != nil {
			t.Fatal(err)
		}
		f[0] = 'X' // Post keeps no reference to the caller's frame
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := p.Pending(); n != 0 {
		t.Fatalf("pending after Flush: %d", n)
	}
	for _, f := range frames {
		f[0] = '{'
	}
	checkReceived(t, p.srv, []string{"c1", "c2"}, frames...)
	// What was tried, throttled tries included: never a push before an
	// earlier one was delivered.
	tries := p.posts.of("c1")
	next := 0 // index in want of the push not yet delivered
	for k, got := range tries {
		if i := slices.Index(want, got); i != next {
			t.Fatalf("try %d posted push %d while push %d was not delivered: %q", k, i, next, tries)
		}
		if k >= 3 { // the first 3 tries were throttled, every later one delivered
			next++
		}
	}
	if len(tries) != 3+5 {
		t.Errorf("tries: got %d, want 8 (3 throttled, 5 delivered): %q", len(tries), tries)
	}
}

// TestPoster_LaneHolds: while a connection is throttled, every Post
// returns at once and its pushes wait in its lane, in order, then go out
// in order when it reads again; the other connection gets each push at
// once.
func TestPoster_LaneHolds(t *testing.T) {
	p := newPoster(t, apigwtest.Options{}, func(c *apigw.Config, _ *aws.Config) {
		c.Patience = time.Minute
		c.FlushWait = 10 * time.Second
	})
	p.srv.Connect("c1", "c2")
	p.srv.Inject("c1", apigwtest.Fault{Status: 429, Type: apigwtest.LimitExceeded, Method: http.MethodPost})
	var frames [][]byte
	for i := range 5 {
		f := fmt.Appendf(nil, `{"push":%d}`, i)
		frames = append(frames, f)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := p.Post(ctx, f, []string{"c1", "c2"})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		checkReceived(t, p.srv, []string{"c2"}, frames...)
		if n := p.Pending(); n != i+1 {
			t.Errorf("after Post %d: pending %d, want %d", i, n, i+1)
		}
	}
	if got := p.srv.Received("c1"); len(got) != 0 {
		t.Errorf("c1 received %q while throttled", got)
	}
	p.srv.Clear("c1")
	p.Flush(context.Background())
	checkReceived(t, p.srv, []string{"c1", "c2"}, frames...)
	// Only the head was tried while throttled: push 0 again and again
	// until delivered, then 1 to 4 once each.
	tries := p.posts.of("c1")
	k := slices.IndexFunc(tries, func(s string) bool { return s != `{"push":0}` })
	if k < 1 || !slices.Equal(tries[k:], []string{`{"push":1}`, `{"push":2}`, `{"push":3}`, `{"push":4}`}) {
		t.Errorf("tries of c1: %q, want push 0 until it was delivered, then 1 to 4 once each", tries)
	}
}

// TestPoster_ServerError: a 5xx is retried in the lane, not below it
// (no request is retried inside Post), and delivered once.
func TestPoster_ServerError(t *testing.T) {
	p := newPoster(t, apigwtest.Options{}, func(c *apigw.Config, _ *aws.Config) { c.FlushWait = 10 * time.Second })
	p.srv.Connect("c1", "c2")
	p.srv.Inject("c1", apigwtest.Fault{Status: 500, Times: 1})
	frame := []byte(`{"push":3}`)
	if err := p.Post(context.Background(), frame, []string{"c1", "c2"}); err != nil {
		t.Fatal(err)
	}
	p.Flush(context.Background())
	checkReceived(t, p.srv, []string{"c1", "c2"}, frame)
	// One try per request: nothing below the Poster retried.
	if st, ops := p.srv.Stats(), p.posts.count(); st.Requests != 3 || ops != 3 {
		t.Errorf("requests %d, tries %d; want 3 and 3", st.Requests, ops)
	}

	// A 503 that lasts: retried until the patience, then the connection
	// is closed. Post itself never fails for it.
	p = newPoster(t, apigwtest.Options{}, func(c *apigw.Config, _ *aws.Config) { c.Patience = 200 * time.Millisecond })
	p.srv.Connect("c1", "c2")
	p.srv.Inject("c2", apigwtest.Fault{Status: 503, Method: http.MethodPost})
	if err := p.Post(context.Background(), frame, []string{"c1", "c2"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "c2 closed", p.stuckClosed)
	if got := p.srv.Deleted(); !slices.Equal(got, []string{"c2"}) {
		t.Errorf("deleted: got %q, want [c2]", got)
	}
	checkReceived(t, p.srv, []string{"c1"}, frame)
}

// TestPoster_GoneInLane: a connection that goes away while its push waits
// in a lane is handed to OnGone, its lane dropped, and nothing logged.
func TestPoster_GoneInLane(t *testing.T) {
	p := newPoster(t, apigwtest.Options{}, nil)
	// Never connected: throttled once, then 410.
	p.srv.Inject("c1", apigwtest.Fault{Status: 429, Type: apigwtest.LimitExceeded, Times: 1})
	if err := p.Post(context.Background(), []byte("x"), []string{"c1"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "c1 gone", func() bool { return len(p.goneCalls()) > 0 && p.Pending() == 0 })
	if got := p.goneCalls(); !slices.Equal(got, []string{"c1"}) {
		t.Errorf("OnGone: got %q, want [c1]", got)
	}
	if d := p.srv.Deleted(); len(d) != 0 {
		t.Errorf("deleted %q: a gone connection needs no closing", d)
	}
	if logs := p.logs.String(); logs != "" {
		t.Errorf("logs: %s", logs)
	}
}

// TestPoster_MaxLane: a lane that grows past MaxLane closes its
// connection at once, whatever the patience.
func TestPoster_MaxLane(t *testing.T) {
	p := newPoster(t, apigwtest.Options{}, func(c *apigw.Config, _ *aws.Config) {
		c.MaxLane = 3
		c.Patience = time.Minute
	})
	p.srv.Connect("c1", "c2")
	p.srv.Inject("c1", apigwtest.Fault{Status: 429, Type: apigwtest.LimitExceeded, Method: http.MethodPost})
	for i := range 4 {
		if err := p.Post(context.Background(), fmt.Appendf(nil, "%d", i), []string{"c1", "c2"}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "c1 closed", p.stuckClosed)
	if got := p.srv.Deleted(); !slices.Equal(got, []string{"c1"}) {
		t.Errorf("deleted: got %q, want [c1]", got)
	}
	if logs := p.logs.String(); strings.Count(logs, "level=WARN") != 1 || !strings.Contains(logs, "dropped=4") || !strings.Contains(logs, "lane full") {
		t.Errorf("want one warn line, 4 pushes dropped, lane full:\n%s", logs)
	}
	checkReceived(t, p.srv, []string{"c2"}, []byte("0"), []byte("1"), []byte("2"), []byte("3"))
}

// TestPoster_Flush: Flush returns as soon as the lanes are drained, by
// FlushWait when one has just failed, at once when it has been failing
// for longer, and when its context ends.
func TestPoster_Flush(t *testing.T) {
	t.Run("drained", func(t *testing.T) {
		p := newPoster(t, apigwtest.Options{}, func(c *apigw.Config, _ *aws.Config) {
			c.MinBackoff, c.MaxBackoff = 20*time.Millisecond, 40*time.Millisecond
			c.FlushWait = 10 * time.Second
		})
		p.srv.Connect("c1")
		if err := p.Flush(context.Background()); err != nil {
			t.Errorf("no lane: %v", err)
		}
		p.srv.Inject("c1", apigwtest.Fault{Status: 429, Type: apigwtest.LimitExceeded, Times: 3})
		if err := p.Post(context.Background(), []byte("x"), []string{"c1"}); err != nil {
			t.Fatal(err)
		}
		if p.Pending() != 1 {
			t.Fatalf("pending after Post: %d, want 1", p.Pending())
		}
		start := time.Now()
		if err := p.Flush(context.Background()); err != nil {
			t.Error(err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Flush took %v for a lane of 3 short backoffs", took)
		}
		if p.Pending() != 0 {
			t.Errorf("pending after Flush: %d, want 0", p.Pending())
		}
		checkReceived(t, p.srv, []string{"c1"}, []byte("x"))
	})
	t.Run("stuck", func(t *testing.T) {
		const wait = time.Second
		p := newPoster(t, apigwtest.Options{}, func(c *apigw.Config, _ *aws.Config) {
			c.FlushWait = wait
			c.Patience = time.Minute
		})
		p.srv.Connect("c1", "c2")
		p.srv.Inject("c1", apigwtest.Fault{Status: 429, Type: apigwtest.LimitExceeded, Method: http.MethodPost})
		// FlushWait counts from when the lane began failing, during Post.
		start := time.Now()
		if err := p.Post(context.Background(), []byte("x"), []string{"c1", "c2"}); err != nil {
			t.Fatal(err)
		}
		if err := p.Flush(context.Background()); err != nil {
			t.Errorf("a pending push is not an error: %v", err)
		}
		if took := time.Since(start); took < wait || took > wait+2*time.Second {
			t.Errorf("Flush took %v, want about the %v FlushWait", took, wait)
		}
		if p.Pending() != 1 {
			t.Errorf("pending: %d, want 1 (the lane goes on)", p.Pending())
		}
		// Stuck for longer than FlushWait: the next batch does not wait
		// for it again.
		if err := p.Post(context.Background(), []byte("y"), []string{"c1", "c2"}); err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		p.Flush(context.Background())
		if took := time.Since(start); took >= wait/2 {
			t.Errorf("second Flush took %v; a lane stuck past FlushWait should cost no wait", took)
		}
		if p.Pending() != 2 {
			t.Errorf("pending: %d, want 2", p.Pending())
		}
		checkReceived(t, p.srv, []string{"c2"}, []byte("x"), []byte("y"))
	})
	t.Run("context", func(t *testing.T) {
		p := newPoster(t, apigwtest.Options{}, func(c *apigw.Config, _ *aws.Config) {
			c.FlushWait = time.Minute
			c.Patience = time.Minute
		})
		p.srv.Connect("c1")
		p.srv.Inject("c1", apigwtest.Fault{Status: 429, Type: apigwtest.LimitExceeded, Method: http.MethodPost})
		if err := p.Post(context.Background(), []byte("x"), []string{"c1"}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		start := time.Now()
		p.Flush(ctx)
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Flush took %v past its context's 20 ms", took)
		}
		// Close stops the lane and drops what it holds.
		p.Close()
		if n := p.Pending(); n != 0 {
			t.Errorf("pending after Close: %d", n)
		}
	})
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
	if p.posts.count() != 20 {
		t.Errorf("tries: got %d, want 20 (a 403 is not retried)", p.posts.count())
	}
	if n := p.Pending(); n != 0 {
		t.Errorf("pending: %d, want 0 (a 403 is not retried in a lane either)", n)
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
	t.Run("throttled past the deadline", func(t *testing.T) {
		// Post does not wait for the throttled connection: it returns at
		// once, and the lane goes on after Post's context has ended,
		// until the patience.
		p := newPoster(t, apigwtest.Options{}, func(c *apigw.Config, _ *aws.Config) { c.Patience = 500 * time.Millisecond })
		p.srv.Connect("c1", "c2")
		p.srv.Inject("c2", apigwtest.Fault{Status: 429, Type: apigwtest.LimitExceeded, Method: http.MethodPost})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := p.Post(ctx, []byte("x"), []string{"c1", "c2"}); err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Errorf("Post took %v, past its context's 100 ms", time.Since(start))
		}
		<-ctx.Done()
		waitFor(t, "c2 closed", p.stuckClosed)
		if n := len(p.posts.of("c2")); n < 10 {
			t.Errorf("tries of c2: got %d, want it tried again and again", n)
		}
		if got := p.srv.Deleted(); !slices.Equal(got, []string{"c2"}) {
			t.Errorf("deleted: got %q, want [c2]", got)
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

// TestPoster_TLS: over HTTPS, the Poster speaks HTTP/2 when the endpoint
// offers it by ALPN and HTTP/1.1 when not, with the CA bundle given as
// the SDK's HTTP client, and delivers either way.
func TestPoster_TLS(t *testing.T) {
	for _, noH2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoHTTP2=%v", noH2), func(t *testing.T) {
			srv := apigwtest.New(apigwtest.Options{TLS: true, NoHTTP2: noH2, Credentials: &testCreds})
			defer srv.Close()
			roots := x509.NewCertPool()
			roots.AddCert(srv.Certificate())
			acfg := awsConfig()
			acfg.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
				tr.TLSClientConfig = &tls.Config{RootCAs: roots}
			})
			tp, err := apigw.New(srv.Endpoint(), acfg, apigw.Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer tp.Close() // before srv.Close
			if os.Getenv(sdkPostsEnv) == "1" {
				apigw.UseSDKPosts(tp)
			}
			ids := conns("c", 300)
			srv.Connect(ids...)
			for i := range 2 {
				if err := tp.Post(context.Background(), []byte{byte(i)}, ids); err != nil {
					t.Fatal(err)
				}
			}
			checkReceived(t, srv, ids, []byte{0}, []byte{1})
			want := 600
			if noH2 {
				want = 0
			}
			if st := srv.Stats(); st.Requests != 600 || st.HTTP2 != want {
				t.Errorf("%d requests, %d over HTTP/2; want 600 and %d", st.Requests, st.HTTP2, want)
			}
		})
	}
}

// TestPoster_PushCounts: every PostToConnection attempt is counted once by
// its outcome, in Post and in the lanes alike, so the counts add up to
// the requests the endpoint saw.
func TestPoster_PushCounts(t *testing.T) {
	p := newPoster(t, apigwtest.Options{}, func(c *apigw.Config, _ *aws.Config) { c.FlushWait = 10 * time.Second })
	p.srv.Connect("ok1", "ok2", "slow", "bad")
	p.srv.Inject("slow", apigwtest.Fault{Status: 429, Type: apigwtest.LimitExceeded, Times: 3})
	p.srv.Inject("bad", apigwtest.Fault{Status: 403, Type: apigwtest.Forbidden})
	if got := p.PushCounts(); got != (host.PushCounts{}) {
		t.Fatalf("a new Poster's counts: %+v", got)
	}
	err := p.Post(context.Background(), []byte(`{"push":1}`), []string{"ok1", "ok2", "slow", "bad", "gone"})
	if err == nil {
		t.Fatal("the 403 is not reported")
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// ok1, ok2 and slow's fourth try delivered; slow throttled 3 times
	// (once in Post, twice in its lane); bad refused; gone gone.
	want := host.PushCounts{Posted: 3, Gone: 1, Throttled: 3, Failed: 1}
	got := p.PushCounts()
	if got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
	if st := p.srv.Stats(); int64(st.Requests) != got.Posted+got.Gone+got.Throttled+got.Failed {
		t.Errorf("requests %d, counts %+v: they should add up", st.Requests, got)
	}
	// A later Post's share is the difference.
	before := p.PushCounts()
	if err := p.Post(context.Background(), []byte(`{"push":2}`), []string{"ok1"}); err != nil {
		t.Fatal(err)
	}
	if d := p.PushCounts().Sub(before); d != (host.PushCounts{Posted: 1}) {
		t.Errorf("second Post's counts %+v, want 1 posted", d)
	}
}
