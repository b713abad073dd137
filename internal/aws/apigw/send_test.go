package apigw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/wsbind/wsbind/internal/testkit/apigwtest"
)

// classify is what the Poster and its callers read from a post's error.
func classify(err error) string {
	if err == nil {
		return "ok"
	}
	var (
		gone   *types.GoneException
		large  *types.PayloadTooLargeException
		forbid *types.ForbiddenException
		limit  *types.LimitExceededException
		code   interface{ ErrorCode() string }
		status interface{ HTTPStatusCode() int }
	)
	c, s := "", 0
	if errors.As(err, &code) {
		c = code.ErrorCode()
	}
	if errors.As(err, &status) {
		s = status.HTTPStatusCode()
	}
	return fmt.Sprintf("gone=%v large=%v forbidden=%v limit=%v throttle=%v retryable=%v canceled=%v code=%q status=%d",
		errors.As(err, &gone), errors.As(err, &large), errors.As(err, &forbid), errors.As(err, &limit),
		isThrottle(err), isRetryable(err), errors.Is(err, context.Canceled), c, s)
}

// TestSender_MatchesSDK: for every answer API Gateway gives (and no
// answer at all), a post made by the Poster's sender fails, or not,
// exactly as the SDK's PostToConnection does: the same error text, the
// same error types for errors.As, the same classification as throttled
// or retryable. The endpoint checks both requests' signatures.
func TestSender_MatchesSDK(t *testing.T) {
	const conn = "L0SM9cOFvHcCIhw=/+ ?ü"
	creds := aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}
	srv := apigwtest.New(apigwtest.Options{Credentials: &creds})
	defer srv.Close()
	down := apigwtest.New(apigwtest.Options{})
	down.Close() // nothing listens there: a network error
	slow := apigwtest.New(apigwtest.Options{Latency: 5 * time.Second})
	defer slow.Close()
	slow.Connect(conn)

	newPoster := func(endpoint, secret string) *Poster {
		p, err := New(endpoint, aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", secret, "")}, Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	p := newPoster(srv.Endpoint(), "secret")
	srv.Connect(conn)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expiring := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	small := []byte(`{"push":1}`)
	for _, c := range []struct {
		name  string
		p     *Poster
		ctx   context.Context
		frame []byte
		id    string
		fault *apigwtest.Fault
		want  string // a part of classify's answer
	}{
		{name: "delivered", id: conn, want: "ok"},
		{name: "empty frame", id: conn, frame: []byte{}, want: "ok"},
		{name: "gone", id: "gone=", want: "gone=true"},
		{name: "too large", id: conn, frame: bytes.Repeat([]byte("a"), apigwtest.MaxPayload+1), want: "large=true"},
		{name: "forbidden", id: conn, fault: &apigwtest.Fault{Status: 403, Type: apigwtest.Forbidden}, want: "forbidden=true"},
		{name: "throttled", id: conn, fault: &apigwtest.Fault{Status: 429, Type: apigwtest.LimitExceeded}, want: "throttle=true retryable=true"},
		{name: "unmodeled 429", id: conn, fault: &apigwtest.Fault{Status: 429}, want: "retryable=true"},
		{name: "500", id: conn, fault: &apigwtest.Fault{Status: 500}, want: "retryable=true"},
		{name: "503", id: conn, fault: &apigwtest.Fault{Status: 503, Type: "ServiceUnavailableException"}, want: "retryable=true"},
		{name: "other 4xx", id: conn, fault: &apigwtest.Fault{Status: 400, Type: "BadRequestException"}, want: "retryable=false"},
		{name: "bad signature", p: newPoster(srv.Endpoint(), "not the secret"), id: conn, want: `code="InvalidSignatureException" status=403`},
		{name: "network", p: newPoster(down.Endpoint(), "secret"), id: conn, want: "retryable=true"},
		{name: "cancelled", ctx: cancelled, id: conn, want: "canceled=true"},
		{name: "deadline during the request", p: newPoster(slow.Endpoint(), "secret"), id: conn, want: "retryable=false"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pp, ctx, frame := c.p, c.ctx, c.frame
			if pp == nil {
				pp = p
			}
			if ctx == nil {
				ctx = context.Background()
			}
			if c.name == "deadline during the request" {
				ctx = expiring()
			}
			if frame == nil {
				frame = small
			}
			before := len(srv.Received(conn))
			if c.fault != nil {
				f := *c.fault
				f.Times = 2 // both posts
				srv.Inject(c.id, f)
				defer srv.Clear(c.id)
			}
			direct := pp.send.post(ctx, newPush(frame), c.id)
			if c.name == "deadline during the request" {
				if !errors.Is(direct, context.DeadlineExceeded) {
					t.Errorf("got %v, want context.DeadlineExceeded", direct)
				}
				ctx = expiring()
			}
			_, sdk := pp.client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(c.id), Data: frame})
			dk, sk := classify(direct), classify(sdk)
			if dk != sk {
				t.Errorf("sender: %s\n   sdk: %s", dk, sk)
			}
			if !bytes.Contains([]byte(dk), []byte(c.want)) {
				t.Errorf("got %s (%v), want %s", dk, direct, c.want)
			}
			if fmt.Sprint(direct) != fmt.Sprint(sdk) {
				t.Errorf("error text:\nsender: %v\n   sdk: %v", direct, sdk)
			}
			got := srv.Received(conn)[before:]
			if wantN := map[bool]int{true: 2, false: 0}[c.want == "ok"]; len(got) != wantN || (wantN == 2 && (!bytes.Equal(got[0], frame) || !bytes.Equal(got[1], frame))) {
				t.Errorf("received %d frames (%.40q), want %d equal to the frame posted", len(got), got, wantN)
			}
		})
	}
}
