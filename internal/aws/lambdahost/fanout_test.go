package lambdahost_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/wsbind/wsbind/internal/aws/apigw"
	"github.com/wsbind/wsbind/internal/aws/lambdahost"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/sandbox/host"
	"github.com/wsbind/wsbind/internal/testkit/apigwtest"
)

// fanAWSConfig is an explicit AWS configuration: nothing comes from the
// machine's AWS_* variables or files.
func fanAWSConfig() aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}
}

// newGatewayFixture is a fixture whose pushes go through apigw.Poster,
// with the real SDK client, to a management endpoint on loopback; gone
// connections are dropped from the fixture's store, as the bootstrap
// wires it.
func newGatewayFixture(t testing.TB, opts apigwtest.Options, cfg apigw.Config) (*fixture, *apigwtest.Server) {
	t.Helper()
	f := newFixture()
	srv := apigwtest.New(opts)
	t.Cleanup(srv.Close)
	cfg.OnGone = f.store.DropConn
	p, err := apigw.New(srv.Endpoint(), fanAWSConfig(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.svc.Poster = p
	return f, srv
}

// connectAndSubscribe opens a connection through the connect function,
// then sends it subscribe frames through the route function.
func connectAndSubscribe(t *testing.T, f *fixture, conn string, frames ...string) {
	t.Helper()
	ev := `{"requestContext":{"eventType":"CONNECT","routeKey":"$connect","connectionId":"` + conn + `","connectedAt":7}}`
	if resp := proxyResponse(t, invoke(t, f.handler(t, lambdahost.NameConnect, nil), []byte(ev))); resp.StatusCode != 200 {
		t.Fatalf("connect %s: status %d", conn, resp.StatusCode)
	}
	route := f.handler(t, lambdahost.NameRoute, nil)
	for _, fr := range frames {
		if body := send(t, route, conn, nil, fr); !strings.Contains(body, `"response_status":200`) {
			t.Fatalf("%s: %s: %s", conn, fr, body)
		}
	}
}

const (
	subscribeUpdates = `{"stream":"questions","payload":{"action":"subscribe","data":{"action":"update"}}}`
)

func subscribeUpdatesOf(pk string) string {
	return `{"stream":"questions","payload":{"action":"subscribe","pk":"` + pk + `","data":{"action":"update"}}}`
}

// updatePush is the push of an update of question id to text.
func updatePush(id, text string) string {
	return `{"stream":"questions","payload":{"action":"update","data":{"id":"` + id + `","question_text":"` + text +
		`","pub_date":"2026-01-02T03:04:05Z","published":false},"model":"polls.question","pk":"` + id + `","version":2}}`
}

// modify is a MODIFY record of question id, its text changed to text.
func modify(seq, id, text string) string {
	return record(seq, "MODIFY", questionKeys(id), questionImage(id, "Before", false, 1), questionImage(id, text, false, 2), "")
}

// cursorField is a push's history position, which the fan-out takes
// from its clock.
var cursorField = regexp.MustCompile(`,"cursor":"1\.[0-9]+"`)

// received are the frames conn got, their cursors cut out; a push
// without one is reported as it came, so it does not match.
func received(srv *apigwtest.Server, conn string) []string {
	var out []string
	for _, b := range srv.Received(conn) {
		if cursorField.Match(b) {
			b = cursorField.ReplaceAll(b, nil)
		} else {
			b = append([]byte("NO CURSOR "), b...)
		}
		out = append(out, string(b))
	}
	return out
}

func batchResponse(t *testing.T, out []byte) events.DynamoDBEventResponse {
	t.Helper()
	var resp events.DynamoDBEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	return resp
}

// TestStreamFanout_Gateway: a change reaches each subscribed connection
// once, however many of its subscriptions match, over real HTTP; a
// connection the gateway no longer knows is cleaned up from the store.
func TestStreamFanout_Gateway(t *testing.T) {
	f, srv := newGatewayFixture(t, apigwtest.Options{}, apigw.Config{})
	// c-a: all updates and q1's; c-b: all updates; c-gone: all updates,
	// but its client went away without a $disconnect.
	connectAndSubscribe(t, f, "c-a", subscribeUpdates, subscribeUpdatesOf("q1"))
	connectAndSubscribe(t, f, "c-b", subscribeUpdates)
	connectAndSubscribe(t, f, "c-gone", subscribeUpdates)
	srv.Connect("c-a", "c-b")
	if topics := f.store.Topics("c-a"); len(topics) != 2 {
		t.Fatalf("c-a's subscriptions: %q, want 2", topics)
	}

	h := f.handler(t, lambdahost.NameStreamFanout, nil)
	if out := invoke(t, h, batch(modify("100", "q1", "One"))); string(out) != `{"batchItemFailures":[]}` {
		t.Errorf("response: got %s, want no failures", out)
	}
	want := []string{updatePush("q1", "One")}
	for _, c := range []string{"c-a", "c-b"} {
		if got := received(srv, c); !slices.Equal(got, want) {
			t.Errorf("%s received %q, want %q", c, got, want)
		}
	}
	if st := srv.Stats(); st.Requests != 3 {
		t.Errorf("posts: got %d, want 3 (c-a once, c-b, c-gone)", st.Requests)
	}
	if _, ok := f.store.Conn("c-gone"); ok {
		t.Error("c-gone's connection record is still there")
	}
	if topics := f.store.Topics("c-gone"); len(topics) != 0 {
		t.Errorf("c-gone's subscriptions: got %q, want none", topics)
	}
	if _, ok := f.store.Conn("c-a"); !ok {
		t.Error("c-a's connection record was dropped")
	}

	// The next change does not post to the gone connection at all.
	srv.ResetStats()
	if out := invoke(t, h, batch(modify("200", "q2", "Two"))); string(out) != `{"batchItemFailures":[]}` {
		t.Errorf("response: got %s, want no failures", out)
	}
	if st := srv.Stats(); st.Requests != 2 {
		t.Errorf("posts: got %d, want 2 (c-a, c-b)", st.Requests)
	}
	want = append(want, updatePush("q2", "Two"))
	for _, c := range []string{"c-a", "c-b"} {
		if got := received(srv, c); !slices.Equal(got, want) {
			t.Errorf("%s received %q, want %q", c, got, want)
		}
	}
}

// TestStreamFanout_Gateway_Failure: a post the gateway refuses (403) fails
// its record; the batch reports that record's sequence number and stops
// there, and Lambda's retry from it delivers the rest.
func TestStreamFanout_Gateway_Failure(t *testing.T) {
	f, srv := newGatewayFixture(t, apigwtest.Options{}, apigw.Config{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	connectAndSubscribe(t, f, "c-a", subscribeUpdates)
	connectAndSubscribe(t, f, "c-b", subscribeUpdates)
	connectAndSubscribe(t, f, "c-c", subscribeUpdatesOf("q2"))
	srv.Connect("c-a", "c-b", "c-c")
	srv.Inject("c-c", apigwtest.Fault{Status: 403, Type: apigwtest.Forbidden})
	// Throttling on the way is waited out, not a failure.
	srv.Inject("c-b", apigwtest.Fault{Status: 429, Type: apigwtest.LimitExceeded, Times: 3})

	const seq1, seq2, seq3 = "1000000000000000000001", "1000000000000000000002", "1000000000000000000003"
	h := f.handler(t, lambdahost.NameStreamFanout, nil)
	resp := batchResponse(t, invoke(t, h, batch(modify(seq1, "q1", "One"), modify(seq2, "q2", "Two"), modify(seq3, "q3", "Three"))))
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != seq2 {
		t.Fatalf("batch item failures: got %+v, want %s only", resp.BatchItemFailures, seq2)
	}
	// Record 2 reached c-a and c-b before it failed at c-c; record 3 was
	// not attempted.
	want := []string{updatePush("q1", "One"), updatePush("q2", "Two")}
	for _, c := range []string{"c-a", "c-b"} {
		if got := received(srv, c); !slices.Equal(got, want) {
			t.Errorf("%s received %q, want %q", c, got, want)
		}
	}
	if got := received(srv, "c-c"); len(got) != 0 {
		t.Errorf("c-c received %q, want nothing", got)
	}
	if st := srv.Stats(); st.Requests != 2+3+3 {
		t.Errorf("posts: got %d, want 8 (record 1: 2, record 2: 3, c-b's 3 throttled; record 3: none)", st.Requests)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "c-c") || !strings.Contains(logs, "ForbiddenException") {
		t.Errorf("the log does not name the connection and the reason:\n%s", logs)
	}
	if _, ok := f.store.Conn("c-c"); !ok {
		t.Error("a refused connection was dropped as if it were gone")
	}

	// Lambda retries from the failed record. Delivery is at least once:
	// c-a and c-b get record 2 again.
	srv.Clear("c-c")
	resp = batchResponse(t, invoke(t, h, batch(modify(seq2, "q2", "Two"), modify(seq3, "q3", "Three"))))
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("retry: batch item failures %+v", resp.BatchItemFailures)
	}
	want = append(want, updatePush("q2", "Two"), updatePush("q3", "Three"))
	for _, c := range []string{"c-a", "c-b"} {
		if got := received(srv, c); !slices.Equal(got, want) {
			t.Errorf("after the retry, %s received %q, want %q", c, got, want)
		}
	}
	if got, want := received(srv, "c-c"), []string{updatePush("q2", "Two")}; !slices.Equal(got, want) {
		t.Errorf("after the retry, c-c received %q, want %q", got, want)
	}
}

// TestStreamFanout_Gateway_Deadline: a gateway too slow for the
// invocation's time fails the record, not the invocation.
func TestStreamFanout_Gateway_Deadline(t *testing.T) {
	f, srv := newGatewayFixture(t, apigwtest.Options{Latency: 5 * time.Second}, apigw.Config{})
	connectAndSubscribe(t, f, "c-a", subscribeUpdates)
	srv.Connect("c-a")
	h := f.handler(t, lambdahost.NameStreamFanout, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	out, err := h.Invoke(ctx, batch(modify("7", "q1", "One"), modify("8", "q2", "Two")))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); got != `{"batchItemFailures":[{"itemIdentifier":"7"}]}` {
		t.Errorf("got %s, want record 7 reported", got)
	}
}

// slowPoster posts through next after a delay, noting when each pk's
// last post was done.
type slowPoster struct {
	next   host.Poster
	delay  time.Duration
	mu     sync.Mutex
	done   map[string]time.Time
	onPost func(frame []byte) // if set, called as each post begins
}

func (p *slowPoster) Post(ctx context.Context, frame []byte, ids []string) error {
	if p.onPost != nil {
		p.onPost(frame)
	}
	time.Sleep(p.delay)
	err := p.next.Post(ctx, frame, ids)
	var push struct {
		Payload struct {
			PK string `json:"pk"`
		} `json:"payload"`
	}
	if json.Unmarshal(frame, &push) == nil {
		p.mu.Lock()
		p.done[push.Payload.PK] = time.Now()
		p.mu.Unlock()
	}
	return err
}

// TestStreamFanout_RefreshesSlowPushes: while a batch's posts are slow,
// the changes not yet pushed are recorded again every Refresh, so that
// each change's latest position in the history is never much older than
// its last push. A client cut off before that push resumes from a cursor
// no later than the cut, and its replay (from the cursor less the
// overlap, twice Refresh) still reaches the change.
func TestStreamFanout_RefreshesSlowPushes(t *testing.T) {
	f := newFixture()
	const refresh, delay = 100 * time.Millisecond, 250 * time.Millisecond
	slow := &slowPoster{next: f.posts, delay: delay, done: map[string]time.Time{}}
	f.svc.Poster = slow
	connectAndSubscribe(t, f, "c-a", subscribeUpdates)
	connectAndSubscribe(t, f, "c-b", subscribeUpdates)
	pool := host.NewPool(host.NativeModule(nativeProgram), 1)
	t.Cleanup(func() { pool.Close(context.Background()) })
	h, err := lambdahost.New(lambdahost.Config{Function: lambdahost.NameStreamFanout, Pool: pool, Services: f.svc, Refresh: refresh})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if out := invoke(t, h, batch(modify("100", "q1", "One"), modify("200", "q2", "Two"), modify("300", "q3", "Three"))); string(out) != `{"batchItemFailures":[]}` {
		t.Fatalf("response: got %s, want no failures", out)
	}
	hist, err := f.store.Since(context.Background(), store.Part{Stream: "questions"}, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	latest := map[string]time.Time{}
	for _, ch := range hist {
		if at := time.UnixMilli(ch.At); at.After(latest[ch.PK]) {
			latest[ch.PK] = at
		}
	}
	for _, pk := range []string{"q1", "q2", "q3"} {
		pushed, ok := slow.done[pk]
		if !ok {
			t.Fatalf("%s was never pushed", pk)
		}
		// Refresh, and as long again for a busy machine's ticker.
		if lag := pushed.Sub(latest[pk]); lag > 2*refresh {
			t.Errorf("%s: last pushed %v after its latest position in the history (%v after the batch began), want at most %v",
				pk, lag.Round(time.Millisecond), latest[pk].Sub(start).Round(time.Millisecond), 2*refresh)
		}
	}
	if len(hist) <= 3 {
		t.Errorf("history: %d entries for 3 changes pushed over %v, want refreshes", len(hist), time.Since(start).Round(time.Millisecond))
	}
}

// TestStreamFanout_ObjectOrderInHistory: a change is in the history
// before it is pushed, and an object's later change is not in it before
// the earlier one's pushes are out, so a replay never hands a client an
// object's later version ahead of an earlier one still on its way.
func TestStreamFanout_ObjectOrderInHistory(t *testing.T) {
	f := newFixture()
	inHistory := func() map[string][]int64 {
		hist, err := f.store.Since(context.Background(), store.Part{Stream: "questions"}, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]int64{}
		for _, ch := range hist {
			got[ch.PK] = append(got[ch.PK], ch.Version)
		}
		return got
	}
	var seen []string
	slow := &slowPoster{next: f.posts, delay: 20 * time.Millisecond, done: map[string]time.Time{}, onPost: func(frame []byte) {
		var push struct {
			Payload struct {
				PK      string `json:"pk"`
				Version int64  `json:"version"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(frame, &push); err != nil {
			t.Errorf("push %s: %v", frame, err)
		}
		seen = append(seen, fmt.Sprintf("push %s v%d, history %v", push.Payload.PK, push.Payload.Version, inHistory()))
	}}
	f.svc.Poster = slow
	connectAndSubscribe(t, f, "c-a", subscribeUpdates)
	h := f.handler(t, lambdahost.NameStreamFanout, nil)
	two := record("200", "MODIFY", questionKeys("q1"), questionImage("q1", "One", false, 2), questionImage("q1", "One again", false, 3), "")
	if out := invoke(t, h, batch(modify("100", "q1", "One"), modify("150", "q2", "Two"), two)); string(out) != `{"batchItemFailures":[]}` {
		t.Fatalf("response: got %s, want no failures", out)
	}
	want := []string{
		"push q1 v2, history map[q1:[2] q2:[2]]",
		"push q2 v2, history map[q1:[2] q2:[2]]",
		"push q1 v3, history map[q1:[2 3] q2:[2]]",
	}
	if !slices.Equal(seen, want) {
		t.Errorf("posts and the history as each began:\ngot  %q\nwant %q", seen, want)
	}
}
