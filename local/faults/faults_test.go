package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	apitypes "github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dyntypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

const example = "post-fail=0.05,post-throttle=0.05,post-delay=20ms,dynamo-throttle=0.05,dynamo-500=0.01,fanout-trap=0.02,stuck=2,seed=1"

func TestFaults_ParseRoundTrip(t *testing.T) {
	s, err := Parse(example)
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{PostFail: 0.05, PostThrottle: 0.05, PostDelay: 20 * time.Millisecond,
		DynamoThrottle: 0.05, Dynamo500: 0.01, FanoutTrap: 0.02, Stuck: 2, Seed: 1}
	if s != want {
		t.Fatalf("Parse(%q) = %+v, want %+v", example, s, want)
	}
	if got := s.String(); got != example {
		t.Errorf("String() = %q, want %q", got, example)
	}
	for _, s := range []Settings{
		{},
		{PostDelay: 1500 * time.Microsecond, PostDelayShare: 0.25},
		{PostFail: 1},
		{DynamoThrottle: 1.0 / 3, Dynamo500: 0.1, Seed: 1<<64 - 1},
		{FanoutTrap: 1e-9, Stuck: 1000},
	} {
		back, err := Parse(s.String())
		if err != nil || back != s {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", s.String(), back, err, s)
		}
	}
	// Blanks and empty items are ignored.
	if s, err := Parse(" post-fail = 0.5 , ,stuck=1, "); err != nil || s != (Settings{PostFail: 0.5, Stuck: 1}) {
		t.Errorf("blanks: %+v, %v", s, err)
	}
	if s, err := Parse(""); err != nil || s.Any() {
		t.Errorf(`Parse("") = %+v, %v`, s, err)
	}
	if (Settings{Seed: 3}).Any() || !(Settings{Stuck: 1}).Any() {
		t.Error("Any: a seed alone is no fault; a stuck connection is one")
	}
}

func TestFaults_ParseErrors(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"post-fial=0.1", `faults: unknown key "post-fial" (keys: post-fail, post-throttle,`},
		{"post-fail", `faults: "post-fail" is not key=value`},
		{"post-fail=1.5", "faults: post-fail=1.5: a share is from 0 to 1"},
		{"dynamo-500=-0.1", "faults: dynamo-500=-0.1: a share is from 0 to 1"},
		{"fanout-trap=NaN", "faults: fanout-trap=NaN: not a number"},
		{"post-throttle=lots", "faults: post-throttle=lots: not a number"},
		{"post-delay=20", "faults: post-delay=20: not a duration (20ms, 1s)"},
		{"post-delay=-1s", "faults: post-delay=-1s: a delay is not negative"},
		{"stuck=-1", "faults: stuck=-1: not a count"},
		{"stuck=two", "faults: stuck=two: not a count"},
		{"seed=-1", "faults: seed=-1: not an unsigned integer"},
		{"post-fail=0.1,post-fail=0.2", "faults: post-fail is given twice"},
		{"post-fail=0.6,post-throttle=0.6", "faults: post-fail=0.6 and post-throttle=0.6 add up to more than 1"},
		{"dynamo-throttle=0.5,dynamo-500=0.75", "faults: dynamo-throttle=0.5 and dynamo-500=0.75 add up to more than 1"},
	} {
		s, err := Parse(tc.spec)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %+v, %v; want the error %q", tc.spec, s, err, tc.want)
		}
	}
	f := New(Settings{PostFail: 0.5})
	if err := f.Set(Settings{PostThrottle: 2}); err == nil {
		t.Error("Set accepted a share of 2")
	}
	if got := f.Settings(); got != (Settings{PostFail: 0.5}) {
		t.Errorf("after a refused Set: %+v, want the settings before", got)
	}
}

// okHandler answers every request 200 {} and counts them.
type okHandler struct{ n atomic.Int64 }

func (h *okHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.n.Add(1)
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Write([]byte("{}"))
}

// TestFaults_Shares: each share is honoured, statistically: 10,000 draws at
// 0.1 fault between 8% and 12% of them.
func TestFaults_Shares(t *testing.T) {
	const n, share = 10000, 0.1
	within := func(what string, got int64) {
		t.Helper()
		if got < n*8/100 || got > n*12/100 {
			t.Errorf("%s: %d of %d, want about %.0f%%", what, got, n, share*100)
		}
	}
	serve := func(h http.Handler, method, path, target string) int {
		r := httptest.NewRequest(method, path, strings.NewReader("{}"))
		if target != "" {
			r.Header.Set("X-Amz-Target", "DynamoDB_20120810."+target)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}

	f := New(Settings{PostFail: share, PostThrottle: share, DynamoThrottle: share, Dynamo500: share, FanoutTrap: share, Seed: 7})
	mgmt, dyn := f.Management(&okHandler{}), f.DynamoDB(&okHandler{})
	codes := map[int]int64{}
	for range n {
		codes[serve(mgmt, http.MethodPost, "/local/@connections/abc=", "")]++
	}
	within("posts answered 500", codes[500])
	within("posts answered 429", codes[429])
	dcodes := map[int]int64{}
	for range n {
		dcodes[serve(dyn, http.MethodPost, "/", "PutItem")]++
	}
	within("DynamoDB requests answered 500", dcodes[500])
	within("DynamoDB requests answered 400", dcodes[400])
	inv := f.Fanout(&recordingInvoker{})
	var trapped int64
	for range n {
		if _, err := inv.Invoke(context.Background(), []byte(`{"Records":[{},{}]}`)); errors.Is(err, ErrTrapped) {
			trapped++
		}
	}
	within("fan-outs trapped", trapped)
	c := f.Counts()
	if c.Posts != n || c.PostFails != codes[500] || c.PostThrottles != codes[429] ||
		c.DynamoRequests != n || c.DynamoThrottles != dcodes[400] || c.Dynamo500s != dcodes[500] ||
		c.Fanouts != n || c.FanoutTraps != trapped {
		t.Errorf("Counts() = %+v, not what was seen", c)
	}

	// Other requests are never faulted, nor counted.
	f = New(Settings{PostFail: 0.5, PostThrottle: 0.5, DynamoThrottle: 0.5, Dynamo500: 0.5})
	mgmt, dyn = f.Management(&okHandler{}), f.DynamoDB(&okHandler{})
	for range 100 {
		for _, req := range [][2]string{{http.MethodGet, "/local/@connections/abc="}, {http.MethodDelete, "/@connections/abc="}, {http.MethodPost, "/"}, {http.MethodGet, "/"}} {
			if code := serve(mgmt, req[0], req[1], ""); code != 200 {
				t.Fatalf("%s %s: %d, want it passed on", req[0], req[1], code)
			}
		}
		for _, op := range []string{"CreateTable", "DescribeTable", "UpdateTimeToLive", "ListTables"} {
			if code := serve(dyn, http.MethodPost, "/", op); code != 200 {
				t.Fatalf("%s: %d, want it passed on", op, code)
			}
		}
	}
	if c := f.Counts(); c.Injected() != 0 || c.Posts != 0 || c.DynamoRequests != 0 {
		t.Errorf("Counts() = %+v after requests that are not faulted", c)
	}
}

// TestFaults_Seed: the same seed, the same faults.
func TestFaults_Seed(t *testing.T) {
	seq := func(f *Faults) string {
		var b strings.Builder
		for range 200 {
			fmt.Fprint(&b, f.hit(0.5), ",")
		}
		return b.String()
	}
	a, b := New(Settings{PostFail: 0.5, Seed: 42}), New(Settings{PostFail: 0.5, Seed: 42})
	first := seq(a)
	if first != seq(b) {
		t.Error("two Faults seeded alike drew differently")
	}
	if err := a.Set(Settings{PostFail: 0.5, Seed: 42}); err != nil {
		t.Fatal(err)
	}
	if seq(a) != first {
		t.Error("Set with the seed did not restart the draws")
	}
	if seq(New(Settings{Seed: 43})) == first {
		t.Error("another seed drew the same")
	}
	var zero Faults // usable, injecting nothing until Set
	w := httptest.NewRecorder()
	zero.Management(&okHandler{}).ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/@connections/x", nil))
	if zero.Settings() != (Settings{}) || zero.Stuck("x") || w.Code != 200 {
		t.Errorf("the zero Faults: %+v, %d", zero.Settings(), w.Code)
	}
	if err := zero.Set(Settings{PostFail: 1}); err != nil || !zero.hit(zero.Settings().PostFail) {
		t.Errorf("the zero Faults, Set: %v", err)
	}
}

func TestFaults_Stuck(t *testing.T) {
	f := New(Settings{Stuck: 2})
	var got []bool
	for i := range 4 {
		got = append(got, f.Stuck(fmt.Sprint(i)))
	}
	if fmt.Sprint(got) != "[true true false false]" {
		t.Errorf("Stuck: %v, want the first two", got)
	}
	f.Set(Settings{Stuck: 1})
	if !f.Stuck("x") || f.Stuck("y") {
		t.Error("Set did not restart the count")
	}
	if n := f.Counts().Stuck; n != 3 {
		t.Errorf("Counts().Stuck = %d, want 3", n)
	}
}

func TestFaults_PostDelay(t *testing.T) {
	f := New(Settings{PostDelay: 30 * time.Millisecond})
	h := f.Management(&okHandler{})
	begin := time.Now()
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/@connections/x", nil))
	}
	if d := time.Since(begin); d < 90*time.Millisecond {
		t.Errorf("3 posts delayed 30 ms each took %v", d)
	}
	if c := f.Counts(); c.PostDelays != 3 {
		t.Errorf("PostDelays = %d, want 3", c.PostDelays)
	}
	// A canceled request stops waiting.
	f.Set(Settings{PostDelay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	next := &okHandler{}
	f.Management(next).ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, http.MethodPost, "/@connections/x", nil))
	if next.n.Load() != 0 {
		t.Error("a post whose client went away was served")
	}
	// A share of the posts.
	f.Set(Settings{PostDelay: time.Microsecond, PostDelayShare: 0.1, Seed: 3})
	before := f.Counts().PostDelays
	for range 10000 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/@connections/x", nil))
	}
	if n := f.Counts().PostDelays - before; n < 800 || n > 1200 {
		t.Errorf("post-delay-share=0.1: %d of 10000 delayed", n)
	}
}

// recordingInvoker records the records of each invocation.
type recordingInvoker struct {
	mu   sync.Mutex
	got  []int
	fail error
}

func (r *recordingInvoker) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var ev event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, len(ev.Records))
	return []byte(`{"batchItemFailures":[]}`), r.fail
}

func TestFaults_Fanout(t *testing.T) {
	f := New(Settings{FanoutTrap: 1})
	fn := &recordingInvoker{}
	inv := f.Fanout(fn)
	for _, n := range []int{5, 4, 1} {
		recs := make([]string, n)
		for i := range recs {
			recs[i] = fmt.Sprintf(`{"eventID":"%d"}`, i)
		}
		_, err := inv.Invoke(context.Background(), []byte(`{"Records":[`+strings.Join(recs, ",")+`]}`))
		if !errors.Is(err, ErrTrapped) {
			t.Errorf("%d records: %v, want ErrTrapped", n, err)
		}
	}
	if fmt.Sprint(fn.got) != "[2 2 1]" {
		t.Errorf("the function got %v records, want the first half, at least one: [2 2 1]", fn.got)
	}
	// Not a batch: passed as is.
	fn.got = nil
	if _, err := inv.Invoke(context.Background(), []byte(`{"Records":[]}`)); err != nil || fmt.Sprint(fn.got) != "[0]" {
		t.Errorf("empty batch: %v, %v", fn.got, err)
	}
	// The function's own failure is reported too.
	fn.fail = errors.New("boom")
	if _, err := inv.Invoke(context.Background(), []byte(`{"Records":[{},{}]}`)); !errors.Is(err, ErrTrapped) || !strings.Contains(err.Error(), "boom") {
		t.Errorf("failing function: %v", err)
	}
	// Off: the whole batch, the function's answer.
	fn.fail, fn.got = nil, nil
	f.Set(Settings{})
	out, err := inv.Invoke(context.Background(), []byte(`{"Records":[{},{},{}]}`))
	if err != nil || string(out) != `{"batchItemFailures":[]}` || fmt.Sprint(fn.got) != "[3]" {
		t.Errorf("no trap: %s, %v, %v", out, err, fn.got)
	}
}

func awsConfig() aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
}

// TestFaults_DynamoDBSDK: the real SDK client sees the injected answers as
// DynamoDB's: a throttle it retries, a 500 it retries, and then the
// modeled errors.
func TestFaults_DynamoDBSDK(t *testing.T) {
	f := New(Settings{DynamoThrottle: 1})
	next := &okHandler{}
	srv := httptest.NewServer(f.DynamoDB(next))
	defer srv.Close()
	client := dynamodb.NewFromConfig(awsConfig(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = retry.BackoffDelayerFunc(noDelay) })
	})
	ctx := context.Background()
	get := &dynamodb.GetItemInput{TableName: aws.String("t"), Key: map[string]dyntypes.AttributeValue{"id": &dyntypes.AttributeValueMemberS{Value: "1"}}}

	_, err := client.GetItem(ctx, get)
	var pte *dyntypes.ProvisionedThroughputExceededException
	if !errors.As(err, &pte) {
		t.Fatalf("throttled GetItem: %v, want ProvisionedThroughputExceededException", err)
	}
	if !retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool() {
		t.Errorf("the SDK does not see %v as a throttle", err)
	}
	if c := f.Counts(); c.DynamoThrottles != int64(retry.DefaultMaxAttempts) {
		t.Errorf("%d throttles for one GetItem, want the SDK's %d attempts", c.DynamoThrottles, retry.DefaultMaxAttempts)
	}

	f.Set(Settings{Dynamo500: 1})
	_, err = client.GetItem(ctx, get)
	var ise *dyntypes.InternalServerError
	if !errors.As(err, &ise) {
		t.Fatalf("failed GetItem: %v, want InternalServerError", err)
	}
	if c := f.Counts(); c.Dynamo500s != int64(retry.DefaultMaxAttempts) {
		t.Errorf("%d 500s for one GetItem, want the SDK's %d attempts", c.Dynamo500s, retry.DefaultMaxAttempts)
	}
	if next.n.Load() != 0 {
		t.Error("a faulted request reached the endpoint")
	}

	// A share: retried until it passes.
	f.Set(Settings{DynamoThrottle: 0.3, Dynamo500: 0.05, Seed: 1})
	for i := range 100 {
		if _, err := client.GetItem(ctx, get); err != nil && !errors.As(err, &pte) && !errors.As(err, &ise) {
			t.Fatalf("GetItem %d: %v", i, err)
		}
	}
	if c := f.Counts(); next.n.Load() < 90 || c.DynamoThrottles < 30 {
		t.Errorf("100 GetItems at 30%% throttles: %d served, %+v", next.n.Load(), c)
	}
}

func noDelay(int, error) (time.Duration, error) { return 0, nil }

// TestFaults_ManagementSDK: the real management API client sees 429
// LimitExceededException and a 500 it retries.
func TestFaults_ManagementSDK(t *testing.T) {
	f := New(Settings{PostThrottle: 1})
	next := &okHandler{}
	srv := httptest.NewServer(f.Management(next))
	defer srv.Close()
	client := apigatewaymanagementapi.NewFromConfig(awsConfig(), func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(srv.URL + "/local")
		o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = retry.BackoffDelayerFunc(noDelay) })
	})
	ctx := context.Background()
	post := &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("abc="), Data: []byte("hi")}
	_, err := client.PostToConnection(ctx, post)
	var le *apitypes.LimitExceededException
	if !errors.As(err, &le) {
		t.Fatalf("throttled post: %v, want LimitExceededException", err)
	}

	f.Set(Settings{PostFail: 1})
	before := f.Counts().PostFails
	_, err = client.PostToConnection(ctx, post)
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InternalServerErrorException" {
		t.Fatalf("failed post: %v, want InternalServerErrorException", err)
	}
	if n := f.Counts().PostFails - before; n != int64(retry.DefaultMaxAttempts) {
		t.Errorf("%d 500s for one post, want the SDK's %d attempts", n, retry.DefaultMaxAttempts)
	}
	if _, err := client.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String("abc=")}); err != nil {
		t.Errorf("GetConnection is faulted: %v", err)
	}
	if _, err := client.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String("abc=")}); err != nil {
		t.Errorf("DeleteConnection is faulted: %v", err)
	}
	if next.n.Load() != 2 {
		t.Errorf("the endpoint served %d requests, want the GET and the DELETE", next.n.Load())
	}
}
