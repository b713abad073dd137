// Package apigw delivers pushes to WebSocket clients through API
// Gateway's management API (PostToConnection), as the streamfanout
// function's host.Poster, host.Flusher and host.PushCounter
// (internal/sandbox/host, whose PushCounts type alone it uses:
// lambdainit, which wires the two, checks that they fit).
//
//	p, err := apigw.New(os.Getenv("WSBIND_MANAGEMENT_ENDPOINT"), awsCfg,
//		apigw.Config{OnGone: conns.DropConn})
//	svc := &host.Services{Poster: p /* ... */}
//
// One Post sends one frame to many connections, a bounded number at a
// time, one attempt each, and never waits for a retry: a connection that
// is throttled (its client is not reading), answers 5xx or fails on the
// network gets the frame in a lane of its own, a FIFO that the Poster
// retries in the background, so that one slow client cannot hold up the
// pushes to the others (RATIONALE: "Why does a throttled push wait in a
// lane of its own?"). While a connection's lane is not empty, later pushes
// to it join the lane: pushes to one connection never overtake each
// other. A lane whose head has failed for longer than Config.Patience, or
// that grows past Config.MaxLane, marks its connection stuck: the Poster
// closes the connection (DeleteConnection), so its client knows to list
// again, and hands it to OnGone. Gone connections are cleaned up, and
// what failed for good (403, other 4xx, the context ending) is named in
// Post's error so that the change is retried. Flush waits a little for the
// lanes at the end of a batch.
package apigw

import (
	"bytes"
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
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/wsbind/wsbind/internal/sandbox/host"
)

// Defaults of Config (RATIONALE: "Why 256 posts in flight?" and "Why
// does a throttled push wait in a lane of its own?").
const (
	DefaultConcurrency = 256
	DefaultMinBackoff  = 25 * time.Millisecond
	DefaultMaxBackoff  = time.Second
	DefaultPatience    = 5 * time.Second
	DefaultMaxLane     = 64
	DefaultFlushWait   = 250 * time.Millisecond
)

// cleanupTimeout bounds the closing of a stuck connection
// (DeleteConnection, then OnGone).
const cleanupTimeout = 10 * time.Second

// Config configures a Poster. The zero value works: 256 posts in flight,
// retries backed off from 25 ms up to 1 s for at most 5 s per push, lanes
// of at most 64 pushes, Flush waiting at most 250 ms, gone connections
// only logged.
type Config struct {
	// Concurrency is the most requests in flight at once, across all of
	// the Poster's Posts and lanes. 0 means DefaultConcurrency.
	Concurrency int
	// OnGone is called once for each connection API Gateway answers 410
	// GoneException for, and for each connection the Poster closed as
	// stuck, to forget it and its subscriptions (the Connections'
	// DropConn). Its error is logged, not returned: the push counts as
	// delivered, and the connection record's TTL cleans up what the call
	// could not. nil means gone connections are only skipped.
	OnGone func(ctx context.Context, connID string) error
	// MinBackoff and MaxBackoff bound the wait before a lane tries its
	// head again: the n-th wait is drawn uniformly from
	// [0, min(MaxBackoff, MinBackoff·2ⁿ)] ("full jitter"). 0 means
	// DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Patience is how long a lane's head may keep failing before its
	// connection is declared stuck and closed. 0 means DefaultPatience,
	// 5 s: a client that reads, even over a slow network, empties its
	// buffer in well under a second, and API Gateway's 5xx are as short,
	// so 5 s is room for a few full backoffs; yet it is short enough that
	// a push is not stale when it lands, that a never-reading client is
	// closed (and so resynchronises) sooner than the emulator's gateway
	// would drop it (10 s), and that lanes seldom outlive the invocation
	// that filled them.
	Patience time.Duration
	// MaxLane is the most pushes a lane holds: one more marks the
	// connection stuck at once, as a client that far behind gains nothing
	// from the backlog. 0 means DefaultMaxLane.
	MaxLane int
	// FlushWait is how long after a lane's head first failed Flush still
	// waits for it to drain. 0 means DefaultFlushWait.
	FlushWait time.Duration
	// Log receives one line per Post that dropped a push too large for
	// API Gateway, per stuck connection closed, and per failed cleanup.
	// nil means slog.Default().
	Log *slog.Logger
}

// Poster posts frames to API Gateway WebSocket connections. It is safe
// for concurrent use. It lives for the process: its lanes go on in the
// background between Posts; Close stops them.
type Poster struct {
	client *apigatewaymanagementapi.Client // for DeleteConnection (and posts, with sdkPosts)
	cfg    Config
	slots  chan struct{} // one per request in flight
	log    *slog.Logger

	send *sender // for PostToConnection
	// sdkPosts makes posts go through client, as they did before sender:
	// the baseline of BenchmarkPostCost, set by tests only.
	sdkPosts bool
	// onTry, when set (by tests), sees every try before it is sent.
	onTry func(id string, frame []byte)

	ctx    context.Context // the lanes'; ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // one per lane goroutine

	mu     sync.Mutex
	lanes  map[string]*lane // by connection id
	idle   chan struct{}    // closed when the last lane is removed; nil when there is none
	closed bool

	// goneAt holds connections API Gateway answered 410 for, and when:
	// later pushes to them are skipped, and OnGone runs once, not once
	// per push (a replay of hundreds to a client that just left).
	goneMu sync.Mutex
	goneAt map[string]time.Time

	// The outcomes of PostToConnection attempts, for PushCounts.
	posted, goneN, throttled, failed atomic.Int64
}

// PushCounts returns the outcomes of the Poster's PostToConnection
// attempts so far, retries in the lanes included (host.PushCounts).
func (p *Poster) PushCounts() host.PushCounts {
	return host.PushCounts{Posted: p.posted.Load(), Gone: p.goneN.Load(), Throttled: p.throttled.Load(), Failed: p.failed.Load()}
}

// count adds one attempt's outcome to the PushCounts.
func (p *Poster) count(err error) {
	var gone *types.GoneException
	switch {
	case err == nil:
		p.posted.Add(1)
	case errors.As(err, &gone):
		p.goneN.Add(1)
	case isThrottle(err):
		p.throttled.Add(1)
	default:
		p.failed.Add(1)
	}
}

// goneFor is how long a gone connection is remembered. Connection ids
// are never reused; the bound only keeps the map small.
const goneFor = 2 * time.Minute

// isGone reports whether id answered 410 recently.
func (p *Poster) isGone(id string) bool {
	p.goneMu.Lock()
	defer p.goneMu.Unlock()
	at, ok := p.goneAt[id]
	return ok && time.Since(at) < goneFor
}

// Gone reports whether API Gateway answered 410 Gone for the
// connection lately.
func (p *Poster) Gone(id string) bool { return p.isGone(id) }

// markGone records id as gone and reports whether it was news.
func (p *Poster) markGone(id string) bool {
	p.goneMu.Lock()
	defer p.goneMu.Unlock()
	if at, ok := p.goneAt[id]; ok && time.Since(at) < goneFor {
		return false
	}
	if p.goneAt == nil {
		p.goneAt = map[string]time.Time{}
	}
	if len(p.goneAt) >= 4096 {
		for k, at := range p.goneAt {
			if time.Since(at) >= goneFor {
				delete(p.goneAt, k)
			}
		}
	}
	p.goneAt[id] = time.Now()
	return true
}

// lane is the pushes waiting for one connection, oldest first. Its fields
// are guarded by Poster.mu.
type lane struct {
	frames  []*push
	since   time.Time     // when the head first failed; zero until it has
	lastErr error         // the last failure, for the log line
	refused int           // pushes refused because the lane was full or closing
	closing bool          // the connection is stuck and being closed
	wake    chan struct{} // 1-buffered: the lane overflowed, look now
}

// New returns a Poster for the management endpoint endpoint
// (WSBIND_MANAGEMENT_ENDPOINT, https://{api-id}.execute-api.{region}.amazonaws.com/{stage}),
// signing with awsCfg's credentials. When awsCfg has no region, the
// endpoint's host name gives it.
//
// The client it builds differs from awsCfg's in two ways. It makes one
// attempt per call, whatever awsCfg.Retryer or awsCfg.RetryMaxAttempts
// say: the Poster retries in its lanes, where a retry holds up no other
// connection. And its HTTP connection pool keeps Concurrency idle
// connections to the endpoint: when awsCfg.HTTPClient is nil or the SDK's
// *awshttp.BuildableClient (what config.LoadDefaultConfig makes, custom
// CA bundle included), its transport is configured so; any other client
// is used as given, and should allow that many idle connections per host
// itself.
//
// Posts do not go through the SDK client's middleware stack, which cost
// more CPU than the rest of a post: the Poster builds each request, signs
// it with the SDK's SigV4 signer and awsCfg's credentials, sends it with
// the same HTTP client and decodes errors as the client does. So
// middleware in awsCfg.APIOptions (tracing, say) sees DeleteConnection
// only (RATIONALE: "Why does the Poster sign its posts itself?").
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
	if cfg.Patience <= 0 {
		cfg.Patience = DefaultPatience
	}
	if cfg.MaxLane <= 0 {
		cfg.MaxLane = DefaultMaxLane
	}
	if cfg.FlushWait <= 0 {
		cfg.FlushWait = DefaultFlushWait
	}
	hc := PoolClient(awsCfg.HTTPClient, cfg.Concurrency)
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = strings.TrimSuffix(u.RawPath, "/")

	client := apigatewaymanagementapi.NewFromConfig(awsCfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(strings.TrimSuffix(endpoint, "/"))
		o.Region = region
		// One attempt: a 5xx or a network error comes back at once, to
		// be retried in the connection's lane. (The SDK's retryer would
		// sleep in Post, holding up every other connection, and draw on
		// one retry quota for the whole client.) NopRetryer, unlike a
		// standard retryer of 1 attempt, does not wrap the error in
		// "exceeded maximum number of attempts".
		o.Retryer = aws.NopRetryer{}
		o.RetryMaxAttempts = 0 // nonzero would wrap the retryer again
		o.HTTPClient = hc
	})
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Poster{
		client: client, send: newSender(u, region, awsCfg, hc), cfg: cfg, slots: make(chan struct{}, cfg.Concurrency), log: log,
		ctx: ctx, cancel: cancel, lanes: map[string]*lane{},
	}, nil
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

// PoolClient returns hc with a connection pool for n requests in flight.
// net/http keeps 2 idle connections per host by default, and the SDK's
// client 10: with more posts in flight, every request over that opens a
// new connection (a TLS handshake each) and closes it after. New applies
// it to the client it is given; a caller that wraps the client (a rate
// limiter in front of it, say) applies it first, to the inner one, as New
// uses any other client as it is.
func PoolClient(hc aws.HTTPClient, n int) aws.HTTPClient {
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

// isThrottle reports a throttling error as the SDK knows them: the
// LimitExceededException API Gateway answers with 429, the other
// services' throttling codes, and a 429 with no modeled error.
func isThrottle(err error) bool {
	var le *types.LimitExceededException
	return errors.As(err, &le) || retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool()
}

// retryables is what the SDK's standard retryer would retry: 5xx,
// network errors and timeouts, throttling codes; not a cancelled request.
var retryables = retry.IsErrorRetryables(retry.DefaultRetryables)

// isRetryable reports an error a later attempt may not get: throttling,
// 5xx, a network error or timeout.
func isRetryable(err error) bool {
	return isThrottle(err) || retryables.IsErrorRetryable(err).Bool()
}

// Post sends frame to every connection in connIDs, Concurrency requests
// at a time, and returns without waiting for any retry. Each connection
// gets one attempt, unless it has a lane (pushes still waiting from
// earlier Posts): then frame joins the lane, behind them. A delivered
// push, or a gone connection (handed to OnGone), is done; a frame API
// Gateway finds too large is logged and dropped, as no retry can deliver
// it. A failure worth retrying (throttling, 5xx, network errors) moves
// the frame to the connection's lane, where it is retried in the
// background until delivered, the connection is gone, or the connection
// is closed as stuck (Config.Patience, Config.MaxLane); it counts as
// delivered here. Anything else that fails (403, other 4xx, ctx ending
// before or during the attempt) is returned as an *Error naming the
// connections the frame may not have reached. Post keeps no reference to
// frame after it returns: a lane holds a copy.
func (p *Poster) Post(ctx context.Context, frame []byte, connIDs []string) error {
	n := len(connIDs)
	if n == 0 {
		return nil
	}
	results := make([]error, n)
	pu := newPush(frame)
	var next atomic.Int64
	var tooLarge atomic.Int64 // connections answered 413
	var kept *push            // pu with frame's copy, for the lanes, made once; guarded by p.mu
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
				id := connIDs[i]
				if p.isGone(id) {
					continue // 410 already: the client left
				}
				if p.enqueue(id, pu, &kept, nil) {
					continue // behind the connection's earlier pushes
				}
				err := p.postOne(ctx, pu, id)
				var gone *types.GoneException
				var large *types.PayloadTooLargeException
				switch {
				case err == nil:
				case errors.As(err, &gone):
					p.gone(ctx, id)
				case errors.As(err, &large):
					tooLarge.Add(1)
				case ctx.Err() != nil:
					// Out of time: the record is retried, which is better
					// than a handler cut off mid-reply.
					results[i] = err
				case isRetryable(err) && p.enqueue(id, pu, &kept, err):
				default:
					results[i] = err
				}
			}
		})
	}
	wg.Wait()
	if k := tooLarge.Load(); k > 0 {
		p.logTooLarge(ctx, len(frame), k)
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

// postOne makes one attempt to deliver pu to connection id, in one of
// the slots.
func (p *Poster) postOne(ctx context.Context, pu *push, id string) error {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-p.slots }()
	return p.post(ctx, pu, id)
}

// post sends one PostToConnection request for pu to connection id.
func (p *Poster) post(ctx context.Context, pu *push, id string) error {
	if p.onTry != nil {
		p.onTry(id, pu.frame)
	}
	if p.sdkPosts {
		_, err := p.client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: pu.frame})
		p.count(err)
		return err
	}
	err := p.send.post(ctx, pu, id)
	p.count(err)
	return err
}

// gone hands connection id to OnGone, once, logging its failure.
func (p *Poster) gone(ctx context.Context, id string) {
	if !p.markGone(id) || p.cfg.OnGone == nil {
		return
	}
	if err := p.cfg.OnGone(ctx, id); err != nil {
		p.log.LogAttrs(ctx, slog.LevelWarn, "wsbind: gone connection not cleaned up", slog.String("conn", id), slog.Any("err", err))
	}
}

func (p *Poster) logTooLarge(ctx context.Context, size int, conns int64) {
	p.log.LogAttrs(ctx, slog.LevelError, "wsbind: push dropped: API Gateway refused it as too large (413 PayloadTooLargeException)",
		slog.Int("bytes", size), slog.Int64("conns", conns))
}

// enqueue puts frame at the end of connection id's lane and reports
// whether it did. With failed nil, it does only when the connection has a
// lane; with failed, the error of the attempt Post just made, it starts a
// lane if there is none, unless the Poster is closed. *kept is frame's
// copy, made on first use.
func (p *Poster) enqueue(id string, pu *push, kept **push, failed error) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.lanes[id]
	if p.closed || (l == nil && failed == nil) {
		return false
	}
	if l != nil && (l.closing || len(l.frames) >= p.cfg.MaxLane) {
		// Full: the connection is stuck. The lane's goroutine closes it;
		// until then, what comes is dropped, and counted.
		l.refused++
		select {
		case l.wake <- struct{}{}:
		default:
		}
		return true
	}
	if *kept == nil {
		*kept = &push{frame: bytes.Clone(pu.frame), hash: pu.hash}
	}
	if l != nil {
		l.frames = append(l.frames, *kept)
		return true
	}
	l = &lane{frames: []*push{*kept}, since: time.Now(), lastErr: failed, wake: make(chan struct{}, 1)}
	if len(p.lanes) == 0 {
		p.idle = make(chan struct{})
	}
	p.lanes[id] = l
	p.wg.Add(1)
	go p.run(id, l)
	return true
}

// remove forgets connection id's lane l, and signals Flush when it was
// the last. p.mu is held.
func (p *Poster) remove(id string, l *lane) {
	if p.lanes[id] != l {
		return
	}
	delete(p.lanes, id)
	if len(p.lanes) == 0 && p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
}

// run retries lane l of connection id until it is empty, the connection
// is gone, or the connection is stuck. The head was tried once (by Post)
// when run starts.
func (p *Poster) run(id string, l *lane) {
	defer p.wg.Done()
	attempt := 0 // failed tries of the head, less Post's
	for {
		p.mu.Lock()
		since, full := l.since, l.refused > 0
		var head *push
		if !full { // a full lane may have been emptied since
			head = l.frames[0]
		}
		p.mu.Unlock()
		if full {
			p.stuck(id, l, "lane full")
			return
		}
		if !since.IsZero() {
			// The head has failed: wait, but not past the patience.
			left := time.Until(since.Add(p.cfg.Patience))
			d := p.backoff(attempt)
			out := d >= left
			if out {
				d = max(left, 0)
			}
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-l.wake:
				t.Stop()
				continue
			case <-p.ctx.Done():
				t.Stop()
				p.drop(id, l)
				return
			}
			if out {
				p.stuck(id, l, "patience")
				return
			}
		}

		select {
		case p.slots <- struct{}{}:
		case <-p.ctx.Done():
			p.drop(id, l)
			return
		}
		start := time.Now()
		if since.IsZero() {
			since = start // a fresh head's failure starts the clock now
		}
		// The attempt cannot outlast the patience either.
		ctx, cancel := context.WithDeadline(p.ctx, since.Add(p.cfg.Patience))
		err := p.post(ctx, head, id)
		cut := ctx.Err() != nil // by the patience
		cancel()
		<-p.slots
		if p.ctx.Err() != nil {
			p.drop(id, l)
			return
		}

		var gone *types.GoneException
		var large *types.PayloadTooLargeException
		switch {
		case err == nil:
		case errors.As(err, &gone):
			// Nothing left to deliver to: the rest of the lane goes too.
			p.gone(p.ctx, id)
			p.drop(id, l)
			return
		case errors.As(err, &large):
			p.logTooLarge(p.ctx, len(head.frame), 1)
		default:
			// Throttled, 5xx, network, and also what Post would have
			// returned (403, other 4xx): a lane has no one to return it
			// to, so it retries until the patience runs out.
			p.mu.Lock()
			l.since = since
			if !cut || l.lastErr == nil { // a 429 says more than the deadline
				l.lastErr = err
			}
			p.mu.Unlock()
			attempt++
			continue
		}
		// Done with the head: the next goes at once.
		p.mu.Lock()
		l.frames[0] = nil
		l.frames = l.frames[1:]
		l.since = time.Time{}
		empty := len(l.frames) == 0 && l.refused == 0
		if empty {
			p.remove(id, l)
		}
		p.mu.Unlock()
		if empty {
			return
		}
		attempt = 0
	}
}

// drop forgets lane l without a word: its connection is gone, or the
// Poster closed.
func (p *Poster) drop(id string, l *lane) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.remove(id, l)
}

// stuck closes connection id, whose lane l failed for too long or grew
// too long: its client sees the close and lists again, rather than miss
// pushes silently or hold the others up. The lane stays, refusing what
// comes, until the connection is closed and handed to OnGone.
func (p *Poster) stuck(id string, l *lane, reason string) {
	p.mu.Lock()
	l.closing = true
	p.mu.Unlock()

	delErr := p.closeConn(id)
	ctx, cancel := context.WithTimeout(p.ctx, cleanupTimeout)
	p.gone(ctx, id)
	cancel()

	p.mu.Lock()
	dropped, lastErr := len(l.frames)+l.refused, l.lastErr
	p.remove(id, l)
	p.mu.Unlock()
	attrs := []slog.Attr{slog.String("conn", id), slog.String("reason", reason), slog.Int("dropped", dropped), slog.Any("err", lastErr)}
	if delErr != nil {
		attrs = append(attrs, slog.Any("delete_err", delErr))
	}
	p.log.LogAttrs(p.ctx, slog.LevelWarn, "wsbind: stuck connection closed, its pushes dropped", attrs...)
}

// closeConn closes connection id (DeleteConnection), trying again a few
// times on a failure worth it, for at most cleanupTimeout. A connection
// already gone counts as closed.
func (p *Poster) closeConn(id string) error {
	ctx, cancel := context.WithTimeout(p.ctx, cleanupTimeout)
	defer cancel()
	in := &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)}
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			t := time.NewTimer(p.backoff(attempt))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return err
			}
		}
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		_, err = p.client.DeleteConnection(ctx, in)
		<-p.slots
		var gone *types.GoneException
		if err == nil || errors.As(err, &gone) {
			return nil
		}
		if !isRetryable(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// Flush waits until every lane has drained (delivered, or its connection
// gone or closed as stuck), or ctx ends; but for no lane longer than
// FlushWait past the moment its head first failed. A lane that has been
// failing for longer than that (a client that does not read) costs the
// batch no wait at all: it goes on in the background, as does any lane
// still going when Flush returns. It returns nil: a pending push is not
// an error, as it ends delivered or with its connection closed.
func (p *Poster) Flush(ctx context.Context) error {
	p.mu.Lock()
	idle := p.idle
	now := time.Now()
	var until time.Time
	for _, l := range p.lanes {
		u := l.since.Add(p.cfg.FlushWait)
		if l.since.IsZero() {
			u = now.Add(p.cfg.FlushWait)
		}
		if u.After(until) {
			until = u
		}
	}
	p.mu.Unlock()
	wait := time.Until(until)
	if idle == nil || wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	case <-ctx.Done():
	}
	return nil
}

// Drain waits until every lane has drained (delivered, or its connection
// gone or closed as stuck), or ctx ends, whichever is first, and returns
// ctx's error in the second case. Unlike Flush it does not give up on a
// failing lane: a lane ends within Patience of its head's first failure
// (plus the closing of a stuck connection), so a caller that must not
// return with pushes in flight (a push worker, whose next invocation may
// run in another process: a push left in a lane here could then be
// overtaken by a later one there) waits at most that long.
func (p *Poster) Drain(ctx context.Context) error {
	p.mu.Lock()
	idle := p.idle
	p.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Pending is the number of pushes waiting in lanes.
func (p *Poster) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lanes {
		n += len(l.frames)
	}
	return n
}

// Close stops the lanes, dropping what they hold, and waits for their
// goroutines to end. Later Posts make one attempt per connection and
// return what is left to retry as an error. A Poster that lives as long
// as its process need not be closed.
func (p *Poster) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}

// backoff is the wait after the attempt-th failure (from 0), with full
// jitter: uniform in [0, min(MaxBackoff, MinBackoff·2^attempt)].
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
