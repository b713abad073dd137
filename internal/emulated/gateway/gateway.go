// Package gateway is the emulator's API Gateway WebSocket API: one
// http.Handler that accepts WebSocket clients the way API Gateway does
// (a REQUEST authorizer and $connect decide the handshake, every message
// goes to $default and its response body back to the client,
// $disconnect follows every connection exactly once) and serves the
// management API (POST, GET and DELETE /@connections/{id}) at the same
// address, so the functions reach it with the real aws-sdk-go-v2 client.
//
//	g := gateway.New(gateway.Config{Authorizer: authz, Connect: connect, Route: route})
//	srv := &http.Server{Handler: g} // ws://ADDR/ for clients, http://ADDR/{stage} for the management API
//	defer g.Shutdown(ctx)           // hijacked connections outlive srv.Shutdown
//
// The functions are called with the very JSON events Lambda delivers
// (aws-lambda-go's events types), so the same handlers serve here and on
// AWS. RATIONALE.md lists where the emulation knowingly differs.
package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// API Gateway's limits (docs/aws-limits.md), the defaults of Config.
const (
	DefaultIdleTimeout        = 10 * time.Minute
	DefaultMaxLifetime        = 2 * time.Hour
	DefaultIntegrationTimeout = 29 * time.Second
	DefaultMaxMessageBytes    = 128 << 10
	DefaultMaxFrameBytes      = 32 << 10
)

// Defaults of the emulator's own settings.
const (
	DefaultStage        = "local"
	DefaultAPIID        = "wsbindlocal"
	DefaultRegion       = "us-east-1"
	DefaultAccountID    = "000000000000"
	DefaultWriteTimeout = 10 * time.Second
	DefaultSendQueue    = 64
	DefaultMaxInFlight  = 32
)

// Config configures a Gateway. The zero value works: no authorizer, every
// connection accepted, no $default route, API Gateway's limits.
type Config struct {
	// Authorizer is the $connect route's REQUEST authorizer. nil means
	// the route has none: every handshake goes on to Connect, and events
	// carry no requestContext.authorizer.
	Authorizer lambda.Handler
	// Connect serves $connect and $disconnect. nil means neither route
	// exists: every handshake that passes the authorizer is accepted.
	Connect lambda.Handler
	// Route serves $default, a two-way route: the body of its response
	// is sent back to the client. nil means no route: every message is
	// answered with API Gateway's "Forbidden" message.
	Route lambda.Handler

	// Stage names the stage: in the events, the methodArn, and the
	// management endpoint's optional prefix (http://ADDR/{stage}).
	// "" means DefaultStage.
	Stage string
	// APIID, Region and AccountID make up the methodArn
	// (arn:aws:execute-api:{Region}:{AccountID}:{APIID}/{Stage}/$connect)
	// and the events' apiId. "" means DefaultAPIID, DefaultRegion and
	// DefaultAccountID.
	APIID, Region, AccountID string
	// DomainName is requestContext.domainName. "" means the Host of the
	// handshake request, so that https://{domainName}/{stage}, the
	// management endpoint AWS samples derive from an event, reaches
	// this Gateway (over http).
	DomainName string

	// IdleTimeout closes a connection that sent and received no message
	// for that long. 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxLifetime closes every connection that old. 0 means
	// DefaultMaxLifetime.
	MaxLifetime time.Duration
	// IntegrationTimeout bounds every call of a function. 0 means
	// DefaultIntegrationTimeout.
	IntegrationTimeout time.Duration
	// MaxMessageBytes is the largest message a client may send, and the
	// largest a POST may carry. 0 means DefaultMaxMessageBytes.
	MaxMessageBytes int
	// MaxFrameBytes is the largest WebSocket frame a client may send.
	// 0 means DefaultMaxFrameBytes; a negative value means no limit of
	// its own (MaxMessageBytes still applies).
	MaxFrameBytes int

	// WriteTimeout bounds the sending of one message to a client; a
	// client slower than that is disconnected (1006). 0 means
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// SendQueue is how many messages may wait to be sent to one client;
	// a POST finding the queue full is answered 429
	// LimitExceededException. 0 means DefaultSendQueue.
	SendQueue int
	// MaxInFlight is how many of one connection's messages may be with
	// Route at once; the connection is not read while that many are.
	// 0 means DefaultMaxInFlight.
	MaxInFlight int

	// Stuck, if not nil, is asked once per connection, when its $connect
	// has succeeded: true makes it a connection whose client has stopped
	// reading (fault injection: local/faults). Nothing reaches such a
	// client, as if its receive buffer were full: the message being sent
	// waits WriteTimeout and the connection is then dropped (1006), while
	// posts find the send queue full meanwhile (429).
	Stuck func(connID string) bool

	// Fallback serves the requests that are neither a WebSocket upgrade
	// nor the management API (the debugger page). nil means 404.
	Fallback http.Handler
	// Log receives function failures and refused handshakes. nil means
	// slog.Default().
	Log *slog.Logger
}

// Gateway is an API Gateway WebSocket API and its management API. It is
// safe for concurrent use.
type Gateway struct {
	cfg Config
	log *slog.Logger

	// base ends the calls of functions in flight when Shutdown gives up.
	base     context.Context
	stopBase context.CancelFunc

	mu      sync.Mutex
	conns   map[string]*conn // connected: $connect has succeeded
	ids     map[string]bool  // every id handed out and still in use
	closing bool
	wg      sync.WaitGroup // handshakes, connections, route calls, $disconnects
}

// New returns a Gateway configured by cfg.
func New(cfg Config) *Gateway {
	cfg.Stage = or(cfg.Stage, DefaultStage)
	cfg.APIID = or(cfg.APIID, DefaultAPIID)
	cfg.Region = or(cfg.Region, DefaultRegion)
	cfg.AccountID = or(cfg.AccountID, DefaultAccountID)
	cfg.IdleTimeout = or(cfg.IdleTimeout, DefaultIdleTimeout)
	cfg.MaxLifetime = or(cfg.MaxLifetime, DefaultMaxLifetime)
	cfg.IntegrationTimeout = or(cfg.IntegrationTimeout, DefaultIntegrationTimeout)
	cfg.MaxMessageBytes = or(cfg.MaxMessageBytes, DefaultMaxMessageBytes)
	cfg.MaxFrameBytes = or(cfg.MaxFrameBytes, DefaultMaxFrameBytes)
	cfg.WriteTimeout = or(cfg.WriteTimeout, DefaultWriteTimeout)
	cfg.SendQueue = or(cfg.SendQueue, DefaultSendQueue)
	cfg.MaxInFlight = or(cfg.MaxInFlight, DefaultMaxInFlight)
	g := &Gateway{cfg: cfg, log: cfg.Log, conns: map[string]*conn{}, ids: map[string]bool{}}
	if g.log == nil {
		g.log = slog.Default()
	}
	g.base, g.stopBase = context.WithCancel(context.Background())
	return g
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// ManagementEndpoint is the management API's URL for a Gateway served at
// baseURL (http://ADDR): baseURL/{stage}, the value of
// WSBIND_MANAGEMENT_ENDPOINT.
func (g *Gateway) ManagementEndpoint(baseURL string) string {
	return strings.TrimSuffix(baseURL, "/") + "/" + g.cfg.Stage
}

// ServeHTTP serves the management API on /@connections/{id} and
// /{stage}/@connections/{id}, WebSocket upgrades on / and /{stage}, and
// everything else with Config.Fallback.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id, ok := g.managementPath(r); ok {
		g.serveManagement(w, r, id)
		return
	}
	if IsUpgrade(r) && (r.URL.Path == "/" || r.URL.Path == "/"+g.cfg.Stage) {
		g.serveWebSocket(w, r)
		return
	}
	if g.cfg.Fallback != nil {
		g.cfg.Fallback.ServeHTTP(w, r)
		return
	}
	http.NotFound(w, r)
}

// IsUpgrade reports whether r asks for a WebSocket upgrade: the requests
// the Gateway serves at "/" rather than the page.
func IsUpgrade(r *http.Request) bool {
	return headerHas(r.Header, "Connection", "upgrade") && headerHas(r.Header, "Upgrade", "websocket")
}

// headerHas reports whether a comma-separated header lists token,
// ignoring case.
func headerHas(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// enter counts a goroutine that Shutdown must wait for, unless Shutdown
// has begun.
func (g *Gateway) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return false
	}
	g.wg.Add(1)
	return true
}

// Shutdown closes every connection as API Gateway does when it goes
// away (1001), delivers their $disconnect events, and waits for every
// call of a function to end. When ctx ends first, the calls still in
// flight are canceled, connections are dropped without a close
// handshake, and ctx's error is returned once everything has stopped.
// New handshakes are refused with 503 from the start.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.closing = true
	conns := make([]*conn, 0, len(g.conns))
	for _, c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	for _, c := range conns {
		c.end(closeGoingAway, true)
	}
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		g.stopBase()
		return nil
	case <-ctx.Done():
	}
	g.stopBase()
	for _, c := range conns {
		c.closeNow()
	}
	<-done
	return ctx.Err()
}

// Close is Shutdown without a deadline: it returns when every connection
// has closed and every function call has ended (each bounded by
// IntegrationTimeout).
func (g *Gateway) Close() error { return g.Shutdown(context.Background()) }

// Conns returns the ids of the open connections, in no order.
func (g *Gateway) Conns() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	ids := make([]string, 0, len(g.conns))
	for id := range g.conns {
		ids = append(ids, id)
	}
	return ids
}
