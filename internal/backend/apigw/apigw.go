// Package apigw delivers pushes to WebSocket clients through API
// Gateway's management API (PostToConnection), as the streamfanout
// function's host.Poster.
//
//	p, err := apigw.New(os.Getenv("WSBIND_MANAGEMENT_ENDPOINT"), awsCfg,
//		apigw.Config{OnGone: conns.DropConn})
//	svc := &host.Services{Poster: p /* ... */}
//
// One Post sends one frame to many connections, a bounded number at a
// time; throttling is waited out, gone connections are cleaned up, and
// what could not be delivered is named in the error so that the change
// is retried.
package apigw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/wsbind/wsbind/internal/host"
)

// Defaults of Config (RATIONALE: "Why 256 posts in flight?").
const (
	DefaultConcurrency = 256
	DefaultMinBackoff  = 25 * time.Millisecond
	DefaultMaxBackoff  = time.Second
)

// Config configures a Poster. The zero value works: 256 posts in flight,
// throttling backed off from 25 ms up to 1 s, gone connections only
// logged.
type Config struct {
	// Concurrency is the most PostToConnection requests in flight at
	// once, across all of the Poster's Posts. 0 means DefaultConcurrency.
	Concurrency int
	// OnGone is called once for each connection API Gateway answers 410
	// GoneException for, to forget it and its subscriptions (the
	// Connections' DropConn). Its error is logged, not returned: the push
	// counts as delivered, and the connection record's TTL cleans up what
	// the call could not. nil means gone connections are only skipped.
	OnGone func(ctx context.Context, connID string) error
	// MinBackoff and MaxBackoff bound the wait before posting again to a
	// connection that was throttled: the n-th wait is drawn uniformly
	// from [0, min(MaxBackoff, MinBackoff·2ⁿ)] ("full jitter"). 0 means
	// DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Log receives one line per Post that dropped a push too large for
	// API Gateway, and per failed cleanup. nil means slog.Default().
	Log *slog.Logger
}

// Poster posts frames to API Gateway WebSocket connections. It is safe
// for concurrent use.
type Poster struct {
	client *apigatewaymanagementapi.Client
	cfg    Config
	slots  chan struct{} // one per request in flight
	log    *slog.Logger
}

var _ host.Poster = (*Poster)(nil)

// New returns a Poster for the management endpoint endpoint
// (WSBIND_MANAGEMENT_ENDPOINT, https://{api-id}.execute-api.{region}.amazonaws.com/{stage}),
// signing with awsCfg's credentials. When awsCfg has no region, the
// endpoint's host name gives it.
//
// The client it builds differs from awsCfg's in two ways. Its retryer
// retries what the SDK retries (5xx, network errors; 3 attempts, or
// awsCfg.RetryMaxAttempts) except throttling, which Post backs off from
// itself, and without the SDK's retry quota. And its HTTP connection pool
// keeps Concurrency idle connections to the endpoint: when
// awsCfg.HTTPClient is nil or the SDK's *awshttp.BuildableClient (what
// config.LoadDefaultConfig makes, custom CA bundle included), its
// transport is configured so; any other client is used as given, and
// should allow that many idle connections per host itself.
func New(endpoint string, awsCfg aws.Config, cfg Config) (*Poster, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("apigw: management endpoint %q: %w", endpoint, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("apigw: management endpoint %q: want https://{api-id}.execute-api.{region}.amazonaws.com/{stage}", endpoint)
	}
	region := awsCfg.Region
	if region == "" {
		region = regionOf(u.Hostname())
	}
	if region == "" {
		return nil, fmt.Errorf("apigw: no region: the AWS config has none and endpoint %q does not name one", endpoint)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)

	attempts := awsCfg.RetryMaxAttempts
	if attempts <= 0 {
		attempts = retry.DefaultMaxAttempts
	}
	retryer := retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = attempts
		// Throttling is Post's to back off from, for as long as its
		// context allows; the SDK retrying it too would multiply the
		// attempts and sleep a second each time.
		o.Retryables = append([]retry.IsErrorRetryable{notThrottle{}}, o.Retryables...)
		// The retry quota is one bucket for the whole client: a burst of
		// 5xx across hundreds of parallel posts would drain it and fail
		// posts that one more try would have delivered. Concurrency
		// already bounds the retries in flight.
		o.RateLimiter = ratelimit.None
	})
	hc := poolClient(awsCfg.HTTPClient, cfg.Concurrency)

	client := apigatewaymanagementapi.NewFromConfig(awsCfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(strings.TrimSuffix(endpoint, "/"))
		o.Region = region
		o.Retryer = retryer
		o.RetryMaxAttempts = 0 // already in retryer; nonzero would wrap it again
		o.HTTPClient = hc
	})
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	return &Poster{client: client, cfg: cfg, slots: make(chan struct{}, cfg.Concurrency), log: log}, nil
}

// regionOf reads the region from an execute-api host name,
// {api-id}.execute-api.{region}.amazonaws.com[.cn], or returns "".
func regionOf(hostname string) string {
	parts := strings.Split(hostname, ".")
	if len(parts) >= 5 && parts[1] == "execute-api" && parts[3] == "amazonaws" {
		return parts[2]
	}
	return ""
}

// poolClient returns hc with a connection pool for n requests in flight.
// net/http keeps 2 idle connections per host by default, and the SDK's
// client 10: with more posts in flight, every request over that opens a
// new connection (a TLS handshake each) and closes it after.
func poolClient(hc aws.HTTPClient, n int) aws.HTTPClient {
	var bc *awshttp.BuildableClient
	switch c := hc.(type) {
	case nil:
		bc = awshttp.NewBuildableClient()
	case *awshttp.BuildableClient:
		bc = c
	default:
		return hc
	}
	return bc.WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, n)
		t.MaxIdleConns = max(t.MaxIdleConns, n)
	})
}

// notThrottle tells the SDK's retryer not to retry a throttling error.
type notThrottle struct{}

func (notThrottle) IsErrorRetryable(err error) aws.Ternary {
	if isThrottle(err) {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

// isThrottle reports a throttling error as the SDK knows them: the
// LimitExceededException API Gateway answers with 429, the other
// services' throttling codes, and a 429 with no modeled error.
func isThrottle(err error) bool {
	var le *types.LimitExceededException
	return errors.As(err, &le) || retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool()
}

// Post sends frame to every connection in connIDs, Concurrency requests
// at a time. A throttled post is tried again after a backoff until ctx
// ends; a gone connection is handed to OnGone and counts as delivered; a
// frame API Gateway finds too large is logged and dropped, as no retry
// can deliver it. Anything else that fails (403, 5xx after the SDK's
// retries, network errors, ctx ending) is returned as an *Error naming
// the connections the frame may not have reached.
func (p *Poster) Post(ctx context.Context, frame []byte, connIDs []string) error {
	n := len(connIDs)
	if n == 0 {
		return nil
	}
	results := make([]error, n)
	var next atomic.Int64
	var tooLarge atomic.Int64 // connections answered 413
	var wg sync.WaitGroup
	for range min(n, p.cfg.Concurrency) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if tooLarge.Load() > 0 {
					// The frame is the same for every connection, and so
					// is API Gateway's limit: skip the rest.
					tooLarge.Add(1)
					continue
				}
				err := p.postOne(ctx, frame, connIDs[i])
				if errors.Is(err, errTooLarge) {
					tooLarge.Add(1)
					err = nil
				}
				results[i] = err
			}
		})
	}
	wg.Wait()
	if k := tooLarge.Load(); k > 0 {
		p.log.LogAttrs(ctx, slog.LevelError, "wsbind: push dropped: API Gateway refused it as too large (413 PayloadTooLargeException)",
			slog.Int("bytes", len(frame)), slog.Int64("conns", k))
	}
	var failed []ConnError
	for i, err := range results {
		if err != nil {
			failed = append(failed, ConnError{ConnID: connIDs[i], Err: err})
		}
	}
	if failed != nil {
		return &Error{Failed: failed, Total: n}
	}
	return nil
}

// errTooLarge marks a 413 from postOne.
var errTooLarge = errors.New("payload too large")

// postOne delivers frame to one connection, backing off while it is
// throttled. It returns nil when the frame was delivered or the
// connection is gone, errTooLarge on 413, and otherwise the error.
func (p *Poster) postOne(ctx context.Context, frame []byte, id string) error {
	in := &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: frame}
	// throttled is the last throttling: when ctx ends during the next
	// attempt, it says more than the deadline alone.
	var throttled error
	ended := func(err error) error {
		if throttled != nil {
			return fmt.Errorf("%w (last: %w)", err, throttled)
		}
		return err
	}
	for attempt := 0; ; attempt++ {
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			return ended(context.Cause(ctx))
		}
		_, err := p.client.PostToConnection(ctx, in)
		<-p.slots

		var gone *types.GoneException
		var large *types.PayloadTooLargeException
		switch {
		case err == nil:
			return nil
		case errors.As(err, &gone):
			if p.cfg.OnGone != nil {
				if err := p.cfg.OnGone(ctx, id); err != nil {
					p.log.LogAttrs(ctx, slog.LevelWarn, "wsbind: gone connection not cleaned up", slog.String("conn", id), slog.Any("err", err))
				}
			}
			return nil
		case errors.As(err, &large):
			return errTooLarge
		case ctx.Err() != nil:
			return ended(err)
		case !isThrottle(err):
			return err
		}
		throttled = err
		// Throttled: wait (not holding a slot, so the others go on), and
		// give up now if the wait would outlast ctx: the record is
		// retried, which is better than a handler cut off mid-reply.
		d := p.backoff(attempt)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return fmt.Errorf("still throttled with %v left: %w", time.Until(dl).Round(time.Millisecond), err)
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ended(context.Cause(ctx))
		}
	}
}

// backoff is the wait after the attempt-th throttled try (from 0), with
// full jitter: uniform in [0, min(MaxBackoff, MinBackoff·2^attempt)].
func (p *Poster) backoff(attempt int) time.Duration {
	ceil := p.cfg.MaxBackoff
	if attempt < 30 {
		ceil = min(ceil, p.cfg.MinBackoff<<attempt)
	}
	return rand.N(ceil + 1)
}

// ConnError is why one connection may not have received a push.
type ConnError struct {
	ConnID string
	Err    error
}

// Error is Post's error: the connections a push may not have reached, in
// the order Post was given them.
type Error struct {
	Failed []ConnError
	Total  int // connections Post was given
}

// namedMax is how many failed connections Error's text names: a push to
// thousands that all failed for one reason should not make a megabyte
// log line.
const namedMax = 5

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apigw: push not delivered to %d of %d connections: ", len(e.Failed), e.Total)
	for i, f := range e.Failed[:min(len(e.Failed), namedMax)] {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %v", f.ConnID, f.Err)
	}
	if k := len(e.Failed) - namedMax; k > 0 {
		fmt.Fprintf(&b, "; and %d more", k)
	}
	return b.String()
}

// Unwrap returns every connection's error, so that errors.Is and
// errors.As see them (context.DeadlineExceeded, *types.ForbiddenException).
func (e *Error) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f.Err
	}
	return errs
}
