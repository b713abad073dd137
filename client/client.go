package client

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Defaults of Options.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultBackoffBase = 250 * time.Millisecond
	DefaultBackoffMax  = 30 * time.Second
)

// Options configure a Client. The zero value is an anonymous client with
// the defaults.
type Options struct {
	// Token returns the JWT to connect with, sent as ?token=. It is called
	// before every connection, the first and each reconnect, so it is
	// where a token is refreshed. nil, or "" returned, connects
	// anonymously; an error fails that connection attempt.
	Token func(ctx context.Context) (string, error)
	// Timeout bounds each call, from the call to its reply, including
	// waiting for a connection and sending again after a reconnect. 0
	// means DefaultTimeout. A context deadline that comes sooner wins.
	Timeout time.Duration
	// BackoffBase and BackoffMax shape the wait before each reconnect
	// attempt: a random duration between 0 and min(BackoffMax,
	// BackoffBase·2^n) after n failed attempts ("full jitter"). 0 means
	// DefaultBackoffBase and DefaultBackoffMax.
	BackoffBase, BackoffMax time.Duration
	// OnState, if not nil, is called on every change of state, from the
	// client's own goroutines, one call at a time. It must not block nor
	// call Close; State may be called.
	OnState func(State)
	// Logger receives what the client does on its own: connections,
	// reconnects, API Gateway's error messages. nil discards.
	Logger *slog.Logger
	// HTTPClient makes the handshake (its Transport, proxy, TLS
	// settings). nil means http.DefaultClient.
	HTTPClient *http.Client
	// Header is sent with every handshake, for instance an Authorization
	// header when Token is nil.
	Header http.Header
}

// State is the client's connection state.
type State int

const (
	// Connected: a connection is open and every subscription has been
	// made on it.
	Connected State = iota + 1
	// Reconnecting: the connection ended; calls wait for the next one.
	Reconnecting
	// Closed: Close was called. Nothing more happens.
	Closed
)

func (s State) String() string {
	switch s {
	case Connected:
		return "connected"
	case Reconnecting:
		return "reconnecting"
	case Closed:
		return "closed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Stats count what the client did on its own since Dial.
type Stats struct {
	// Connections opened, the first included.
	Connections int64
	// Resent counts requests sent again because the connection ended
	// before their reply, or the token had expired.
	Resent int64
	// Duplicates counts pushes dropped because their subscription had
	// already delivered that version (or a later one) of the object.
	Duplicates int64
	// Gaps counts Gap events delivered.
	Gaps int64
	// Unrouted counts pushes that matched no subscription (one ended
	// while the push was on its way, for instance).
	Unrouted int64
	// GatewayErrors counts API Gateway's own messages ("Internal server
	// error", "Endpoint request timed out"), which name no request.
	GatewayErrors int64
}

// Client is a connection to a wsbind API that reconnects by itself.
// Its methods are safe for concurrent use.
type Client struct {
	url    *url.URL
	opts   Options
	log    *slog.Logger
	ctx    context.Context // ended by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the client started
	prefix string         // of request_ids
	seq    atomic.Uint64

	mu      sync.Mutex
	cur     *conn         // nil while there is no connection
	up      chan struct{} // closed while cur is not nil
	gen     uint64        // of the newest connection
	pending map[string]*call
	subs    map[string][]*Subscription // live and being made, by stream
	closed  bool

	stateMu sync.Mutex    // one change of state (and OnState call) at a time
	state   atomic.Int32  // a State
	stateCh chan struct{} // closed at the next change of state

	nConnections, nResent, nDuplicates, nGaps, nUnrouted, nGateway atomic.Int64
}

// conn is one WebSocket connection.
type conn struct {
	ws   *websocket.Conn
	gen  uint64
	out  chan []byte   // to its writer
	lost chan struct{} // closed when it ended
}

// call is a request waiting for its reply on one connection.
type call struct {
	cn    *conn
	reply chan *inPayload // buffered: the reader never waits
	// hook, if not nil, sees the reply in the reader's goroutine before
	// the next frame is read, so that what it does is ordered with the
	// pushes around the reply.
	hook func(p *inPayload)
}

// Dial connects to the wsbind API at url (ws:// or wss://) and returns a
// client that stays connected until Close: when the connection ends it
// reconnects and makes its subscriptions again. Dial fails if the first
// connection cannot be made (a refused token is a *DialError with
// StatusCode 401).
func Dial(ctx context.Context, rawURL string, opts Options) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("wsbind client: %w", err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = DefaultBackoffBase
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = DefaultBackoffMax
	}
	c := &Client{
		url:     u,
		opts:    opts,
		log:     opts.Logger,
		prefix:  rand.Text()[:10],
		up:      make(chan struct{}),
		stateCh: make(chan struct{}),
		pending: map[string]*call{},
		subs:    map[string][]*Subscription{},
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	ws, err := c.dial(ctx)
	if err != nil {
		c.cancel()
		return nil, err
	}
	c.wg.Add(1)
	go c.run(ws)
	return c, nil
}

// Stream is the client's handle on one stream (binding). It holds
// nothing: call Stream as often as convenient.
func (c *Client) Stream(name string) *Stream { return &Stream{c: c, name: name} }

// State is the client's current state.
func (c *Client) State() State { return State(c.state.Load()) }

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		Connections:   c.nConnections.Load(),
		Resent:        c.nResent.Load(),
		Duplicates:    c.nDuplicates.Load(),
		Gaps:          c.nGaps.Load(),
		Unrouted:      c.nUnrouted.Load(),
		GatewayErrors: c.nGateway.Load(),
	}
}

// Close closes the connection and ends every subscription; calls in
// progress return ErrClosed. When Close returns, every goroutine the
// client started has ended. Close is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.wg.Wait()
		return nil
	}
	c.closed = true
	cur := c.cur
	var subs []*Subscription
	for _, ss := range c.subs {
		subs = append(subs, ss...)
	}
	c.subs = map[string][]*Subscription{}
	c.mu.Unlock()
	if cur != nil {
		// A close handshake, so the server sees a normal closure; the
		// reader reads the server's close frame.
		_ = cur.ws.Close(websocket.StatusNormalClosure, "")
	}
	c.cancel()
	for _, s := range subs {
		s.end(ErrClosed)
	}
	c.wg.Wait()
	c.setState(0, Closed)
	return nil
}

// dial opens one connection, with a fresh token.
func (c *Client) dial(ctx context.Context) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	u := *c.url
	if c.opts.Token != nil {
		tok, err := c.opts.Token(ctx)
		if err != nil {
			return nil, fmt.Errorf("wsbind client: token: %w", err)
		}
		q := u.Query()
		q.Del("token")
		if tok != "" {
			q.Set("token", tok)
		}
		u.RawQuery = q.Encode()
	}
	ws, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPClient: c.opts.HTTPClient,
		HTTPHeader: c.opts.Header,
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, &DialError{StatusCode: resp.StatusCode, Err: err}
		}
		return nil, fmt.Errorf("wsbind client: dial: %w", err)
	}
	ws.SetReadLimit(readLimit)
	return ws, nil
}

// run keeps the client connected until Close: it serves a connection
// until it ends, then dials again after a jittered wait.
func (c *Client) run(ws *websocket.Conn) {
	defer c.wg.Done()
	failures := 0
	for {
		if ws == nil {
			if !c.sleep(c.backoff(failures)) {
				return
			}
			var err error
			ws, err = c.dial(c.ctx)
			if err != nil {
				if c.ctx.Err() != nil {
					return
				}
				failures++
				c.log.Warn("wsbind client: reconnect failed", "attempt", failures, "err", err)
				continue
			}
			failures = 0
		}
		c.serve(ws)
		ws = nil
		if c.isClosed() {
			return
		}
		c.log.Info("wsbind client: connection ended; reconnecting")
	}
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// backoff is the wait before a reconnect attempt after failures failed
// ones: full jitter.
func (c *Client) backoff(failures int) time.Duration {
	ceil := c.opts.BackoffBase
	for i := 0; i < failures && ceil < c.opts.BackoffMax; i++ {
		ceil *= 2
	}
	ceil = min(ceil, c.opts.BackoffMax)
	return mrand.N(ceil + 1)
}

// sleep waits d, reporting false if the client was closed meanwhile.
func (c *Client) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// serve installs ws as the connection, makes the subscriptions again,
// and reads until it ends.
func (c *Client) serve(ws *websocket.Conn) {
	cn := &conn{ws: ws, out: make(chan []byte), lost: make(chan struct{})}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		ws.CloseNow()
		return
	}
	c.gen++
	cn.gen = c.gen
	c.cur = cn
	close(c.up)
	var subs []*Subscription
	for _, ss := range c.subs {
		for _, s := range ss {
			if s.isLive() {
				subs = append(subs, s)
			}
		}
	}
	c.mu.Unlock()
	c.nConnections.Add(1)
	c.log.Info("wsbind client: connected", "connection", cn.gen, "subscriptions", len(subs))

	c.wg.Add(1)
	go c.writeLoop(cn)
	c.resubscribeAll(cn, subs)

	for {
		_, b, err := ws.Read(c.ctx)
		if err != nil {
			c.log.Info("wsbind client: connection ended", "connection", cn.gen, "err", err)
			break
		}
		c.dispatch(cn, b)
	}

	c.mu.Lock()
	c.cur = nil
	c.up = make(chan struct{})
	c.mu.Unlock()
	close(cn.lost)
	ws.CloseNow()
	if !c.isClosed() {
		c.setState(cn.gen, Reconnecting)
	}
}

// writeLoop sends cn's frames one at a time until cn ends. A frame over
// 32 KB goes out as several frames of at most 32 KB, API Gateway's limit.
func (c *Client) writeLoop(cn *conn) {
	defer c.wg.Done()
	for {
		select {
		case b := <-cn.out:
			if err := c.write(cn.ws, b); err != nil {
				c.log.Info("wsbind client: write failed", "connection", cn.gen, "err", err)
				cn.ws.CloseNow() // the reader sees it end
				return
			}
		case <-cn.lost:
			return
		}
	}
}

func (c *Client) write(ws *websocket.Conn, b []byte) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.Timeout)
	defer cancel()
	if len(b) <= maxFrame {
		return ws.Write(ctx, websocket.MessageText, b)
	}
	w, err := ws.Writer(ctx, websocket.MessageText)
	if err != nil {
		return err
	}
	for len(b) > 0 {
		n := min(len(b), maxFrame)
		if _, err := w.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return w.Close()
}

// dispatch hands one received message to the call it answers or the
// subscriptions it concerns.
func (c *Client) dispatch(cn *conn, b []byte) {
	var f inFrame
	if err := json.Unmarshal(b, &f); err != nil {
		c.log.Warn("wsbind client: a message that is not JSON", "err", err)
		return
	}
	if f.Payload == nil {
		// API Gateway's own answer to a request it could not route; it
		// does not say which (docs/protocol.md §2): the call times out.
		c.nGateway.Add(1)
		c.log.Warn("wsbind client: API Gateway error", "message", f.Message)
		return
	}
	p := f.Payload
	if p.Status == nil {
		c.route(f.Stream, p)
		return
	}
	var id string
	if json.Unmarshal(p.RequestID, &id) != nil {
		return // not one of ours: we send strings
	}
	c.mu.Lock()
	ca := c.pending[id]
	if ca != nil && ca.cn == cn {
		delete(c.pending, id)
	} else {
		ca = nil
	}
	c.mu.Unlock()
	if ca == nil {
		c.log.Debug("wsbind client: a reply no call waits for", "request_id", id)
		return
	}
	if ca.hook != nil {
		ca.hook(p)
	}
	ca.reply <- p
}

// setState reports state s to OnState if it changes, unless gen is not
// 0 and no longer the newest connection (a late report).
func (c *Client) setState(gen uint64, s State) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if cur := State(c.state.Load()); cur == s || cur == Closed {
		return
	}
	if gen != 0 {
		c.mu.Lock()
		stale := gen != c.gen || (s == Connected && c.cur == nil)
		c.mu.Unlock()
		if stale {
			return
		}
	}
	c.state.Store(int32(s))
	close(c.stateCh)
	c.stateCh = make(chan struct{})
	if c.opts.OnState != nil {
		c.opts.OnState(s)
	}
}

// awaitConnected waits until the client is Connected.
func (c *Client) awaitConnected(ctx context.Context) error {
	for {
		c.stateMu.Lock()
		s, ch := State(c.state.Load()), c.stateCh
		c.stateMu.Unlock()
		switch s {
		case Connected:
			return nil
		case Closed:
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// request is one call's request, the same on every attempt but for its
// request_id.
//
// Every call may be sent again on the next connection when one ends
// before its reply: reads and subscribes are safe to repeat, and every
// write carries an idempotency key. Only Unsubscribe, which a lost
// connection makes moot, uses attempt alone.
type request struct {
	stream  string
	payload outPayload
	hook    func(p *inPayload)
}

func (c *Client) nextID() string {
	return c.prefix + "-" + strconv.FormatUint(c.seq.Add(1), 10)
}

// waitConn returns the current connection, waiting for one.
func (c *Client) waitConn(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		closed, cur, up := c.closed, c.cur, c.up
		c.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if cur != nil {
			return cur, nil
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// The messages the client acts on by itself (docs/protocol.md §1, §9).
const (
	msgTokenExpired = "Token expired"
	msgInProgress   = "A request with this idempotency_key is in progress; try again."
)

// errLost is an attempt's connection ending before its reply.
var errLost = errors.New("connection ended")

// attempt sends r once on cn and waits for its reply.
func (c *Client) attempt(ctx context.Context, cn *conn, r *request) (*inPayload, error) {
	r.payload.RequestID = c.nextID()
	b, err := json.Marshal(outFrame{Stream: r.stream, Payload: r.payload})
	if err != nil {
		return nil, err
	}
	if len(b) > maxMessage {
		return nil, ErrTooLarge
	}
	ca := &call{cn: cn, reply: make(chan *inPayload, 1), hook: r.hook}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.pending[r.payload.RequestID] = ca
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.pending[r.payload.RequestID] == ca {
			delete(c.pending, r.payload.RequestID)
		}
		c.mu.Unlock()
	}()
	select {
	case cn.out <- b:
	case <-cn.lost:
		return nil, errLost
	case <-ctx.Done():
		return nil, timedOut(ctx) // the connection is stuck
	case <-c.ctx.Done():
		return nil, ErrClosed
	}
	select {
	case p := <-ca.reply:
		return p, nil
	case <-cn.lost:
		select {
		case p := <-ca.reply: // answered just before the end
			return p, nil
		default:
			return nil, errLost
		}
	case <-ctx.Done():
		return nil, timedOut(ctx)
	case <-c.ctx.Done():
		return nil, ErrClosed
	}
}

// timedOut is the error of a call whose context ended while it had a
// connection: ErrTimeout at its deadline, the context's error if it was
// cancelled.
func timedOut(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	}
	return ctx.Err()
}

// do makes the call r within the client's Timeout: it waits for a
// connection, sends, and sends again on the next connection when one
// ends first or the token expired, and after a pause while the server
// says the same idempotency key is in progress. A reply with a
// status of 400 or more is an *Error.
func (c *Client) do(ctx context.Context, r *request) (*inPayload, error) {
	// Too large whatever its request_id (at most this long): refused
	// before waiting for a connection.
	r.payload.RequestID = c.prefix + "-18446744073709551615"
	if b, err := json.Marshal(outFrame{Stream: r.stream, Payload: r.payload}); err != nil {
		return nil, err
	} else if len(b) > maxMessage {
		return nil, ErrTooLarge
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	lostOnce := false
	busy := 0
	for {
		cn, err := c.waitConn(ctx)
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %w", ErrConnectionLost, err)
		}
		if lostOnce {
			c.nResent.Add(1)
		}
		p, err := c.attempt(ctx, cn, r)
		switch {
		case errors.Is(err, errLost):
			lostOnce = true
			continue
		case err != nil:
			return nil, err
		}
		if *p.Status < 400 {
			return p, nil
		}
		e := newError(r.stream, r.payload.Action, *p.Status, p.Errors)
		switch {
		case e.Status == http.StatusUnauthorized && e.Has(msgTokenExpired):
			// Nothing ran (docs/protocol.md §6): reconnect, with a fresh
			// token, and send it again.
			c.log.Info("wsbind client: token expired; reconnecting", "connection", cn.gen)
			c.drop(cn)
			lostOnce = true
			continue
		case e.Status == http.StatusConflict && e.Has(msgInProgress) && r.payload.IdempotencyKey != "":
			// The first request with this key is still running (typically
			// sent before a reconnect): wait for its reply to be stored.
			busy++
			if !sleepCtx(ctx, c.backoffIn(busy)) {
				return nil, fmt.Errorf("%w: %w", e, ctx.Err())
			}
			continue
		}
		return nil, e
	}
}

// backoffIn is a jittered wait for a retry on the same connection.
func (c *Client) backoffIn(n int) time.Duration {
	return c.backoff(n-1)/2 + c.opts.BackoffBase/4
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// drop ends cn (whose token expired, for instance) so that the client
// reconnects.
func (c *Client) drop(cn *conn) {
	cn.ws.CloseNow()
	<-cn.lost
}
