package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
)

// closeStatus is how a connection ended: the close code and reason the
// client saw (when it saw one), and $disconnect's disconnectStatusCode
// and disconnectReason.
type closeStatus struct {
	code   websocket.StatusCode
	reason string
}

var (
	// closeGoingAway ends idle and expired connections, and all of them
	// when the Gateway shuts down.
	closeGoingAway = closeStatus{websocket.StatusGoingAway, "Going away"}
	// closeDeleted ends a connection deleted through the management API.
	closeDeleted = closeStatus{websocket.StatusNormalClosure, "Connection Closed Normally"}
	// statusDropped is a connection that ended without a close frame
	// (the client vanished, or could not keep up with its messages).
	statusDropped = closeStatus{websocket.StatusAbnormalClosure, ""}
	// statusTooBig is a client message or frame over the limit.
	statusTooBig = closeStatus{websocket.StatusMessageTooBig, "Message too big"}
)

// message is one WebSocket message to send.
type message struct {
	typ  websocket.MessageType
	data []byte
}

// conn is an open connection: its $connect has succeeded.
type conn struct {
	g  *Gateway
	cl *client
	// ws is set once the handshake is done, before run starts the
	// goroutines that use it; wsMu guards it only for closeNow, which
	// Shutdown may call before.
	ws   *websocket.Conn
	wsMu sync.Mutex

	// lastActive is when the connection last sent or received a
	// message, as nanoseconds since cl.connectedAt (monotonic).
	lastActive atomic.Int64

	out        chan message  // the write queue
	inFlight   chan struct{} // one token per message with Route
	done       chan struct{} // closed by end
	writerDone chan struct{} // closed when write returns

	// stuck is a client that reads nothing (Config.Stuck): send waits
	// WriteTimeout and fails.
	stuck bool

	endOnce sync.Once
	// Set once, by end, before done closes.
	status      closeStatus
	serverClose bool // the gateway closes, with a close handshake
}

func newConn(g *Gateway, cl *client) *conn {
	return &conn{
		g:          g,
		cl:         cl,
		out:        make(chan message, g.cfg.SendQueue),
		inFlight:   make(chan struct{}, g.cfg.MaxInFlight),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
		stuck:      g.cfg.Stuck != nil && g.cfg.Stuck(cl.id),
	}
}

func (c *conn) setWS(ws *websocket.Conn) {
	c.wsMu.Lock()
	defer c.wsMu.Unlock()
	c.ws = ws
}

// closeNow drops the connection without a close handshake, if it has
// been upgraded.
func (c *conn) closeNow() {
	c.wsMu.Lock()
	defer c.wsMu.Unlock()
	if c.ws != nil {
		c.ws.CloseNow()
	}
}

func (c *conn) touch() {
	c.lastActive.Store(int64(time.Since(c.cl.connectedAt)))
}

func (c *conn) lastActiveAt() time.Time {
	return c.cl.connectedAt.Add(time.Duration(c.lastActive.Load()))
}

// end ends the connection, once: whoever comes first (the reader, the
// writer, a timer, DELETE, Shutdown) decides its status. With
// serverClose the writer sends what is queued, then closes with st;
// otherwise the connection is dropped. Posts answer 410 from now on.
func (c *conn) end(st closeStatus, serverClose bool) {
	c.endOnce.Do(func() {
		c.status, c.serverClose = st, serverClose
		c.g.mu.Lock()
		if c.g.conns[c.cl.id] == c {
			delete(c.g.conns, c.cl.id)
		}
		c.g.mu.Unlock()
		close(c.done)
	})
}

// run reads the client's messages until the connection ends, hands each
// to Route, and then delivers $disconnect. It returns when the
// connection is closed and its $disconnect has returned.
func (c *conn) run() {
	c.g.wg.Add(2) // write and watch; run itself is counted by its caller
	go c.write()
	go c.watch()
	for {
		typ, data, err := c.ws.Read(context.Background())
		if err != nil {
			c.end(readStatus(err), false)
			break
		}
		c.touch()
		if !c.acquire() {
			break
		}
		c.g.wg.Add(1)
		go c.route(typ, data)
	}
	<-c.writerDone // the connection is closed
	c.g.disconnect(c.cl, c.status)
}

// acquire takes a token for one message with Route, waiting while
// MaxInFlight are: the client is not read meanwhile, so a client sending
// faster than Route answers is slowed down, not buffered without bound.
// It returns false if the connection ends first.
func (c *conn) acquire() bool {
	select {
	case c.inFlight <- struct{}{}:
		return true
	case <-c.done:
		return false
	}
}

// errFrameTooBig is a frame over MaxFrameBytes that is not the first of
// its message (frameWatch).
var errFrameTooBig = errors.New("frame too big")

// readStatus is the status of a connection whose read failed with err.
func readStatus(err error) closeStatus {
	var ce websocket.CloseError
	switch {
	case errors.Is(err, websocket.ErrMessageTooBig), errors.Is(err, errFrameTooBig):
		return statusTooBig
	case errors.As(err, &ce):
		return closeStatus{ce.Code, ce.Reason}
	}
	return statusDropped
}

// write sends the queued messages, one at a time, and closes the
// connection once it has ended. A message that cannot be sent within
// WriteTimeout drops the connection: a slow client delays only itself.
func (c *conn) write() {
	defer c.g.wg.Done()
	defer close(c.writerDone)
	for {
		select {
		case m := <-c.out:
			if !c.send(m) {
				c.end(statusDropped, false)
				c.ws.CloseNow()
				return
			}
		case <-c.done:
			if !c.serverClose {
				c.ws.CloseNow()
				return
			}
		drain:
			for {
				select {
				case m := <-c.out:
					if !c.send(m) {
						c.ws.CloseNow()
						return
					}
				default:
					break drain
				}
			}
			c.ws.Close(c.status.code, c.status.reason)
			return
		}
	}
}

func (c *conn) send(m message) bool {
	if c.stuck {
		// The write would block until WriteTimeout: the client reads
		// nothing. A connection that ends meanwhile gives up at once.
		t := time.NewTimer(c.g.cfg.WriteTimeout)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.done:
		}
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.g.cfg.WriteTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, m.typ, m.data); err != nil {
		return false
	}
	c.touch()
	return true
}

// watch ends the connection when it has been idle for IdleTimeout or
// open for MaxLifetime, as API Gateway does (1001 Going away).
func (c *conn) watch() {
	defer c.g.wg.Done()
	idleTimeout := c.g.cfg.IdleTimeout
	life := time.NewTimer(c.g.cfg.MaxLifetime - time.Since(c.cl.connectedAt))
	defer life.Stop()
	idle := time.NewTimer(idleTimeout)
	defer idle.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-life.C:
			c.end(closeGoingAway, true)
			return
		case <-idle.C:
			quiet := time.Since(c.cl.connectedAt) - time.Duration(c.lastActive.Load())
			if quiet >= idleTimeout {
				c.end(closeGoingAway, true)
				return
			}
			idle.Reset(idleTimeout - quiet)
		}
	}
}

// route hands one message to $default and queues the response's body,
// if any, as the reply.
func (c *conn) route(typ websocket.MessageType, data []byte) {
	defer c.g.wg.Done()
	defer func() { <-c.inFlight }()
	rc := c.g.requestContext(c.cl, eventMessage, routeDefault)
	rc.MessageID = newID()
	ev := events.APIGatewayWebsocketProxyRequest{RequestContext: rc}
	// JSON cannot carry bytes that are not UTF-8: encoding the event
	// would turn them into U+FFFD and hand the function a different
	// message. Such a text frame travels as a binary one does, so the
	// router sees the bytes sent and refuses them itself.
	if typ == websocket.MessageBinary || !utf8.Valid(data) {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(data), true
	} else {
		ev.Body = string(data)
	}
	if c.g.cfg.Route == nil {
		c.enqueue(c.apiMessage("Forbidden", rc.RequestID))
		return
	}
	out, err := c.g.invoke(c.g.cfg.Route, ev)
	var resp events.APIGatewayProxyResponse
	if err == nil {
		err = json.Unmarshal(out, &resp)
	}
	reply := message{typ: websocket.MessageText, data: []byte(resp.Body)}
	if err == nil && resp.IsBase64Encoded {
		reply.typ = websocket.MessageBinary
		reply.data, err = base64.StdEncoding.DecodeString(resp.Body)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		c.enqueue(c.apiMessage("Endpoint request timed out", rc.RequestID))
	case err != nil:
		c.g.log.Error("gateway: $default failed", "conn", c.cl.id, "err", err)
		c.enqueue(c.apiMessage("Internal server error", rc.RequestID))
	case len(reply.data) > 0:
		c.enqueue(reply)
	}
}

// apiMessage is API Gateway's own answer to a message it could not
// route, byte for byte as it sends it.
func (c *conn) apiMessage(text, requestID string) message {
	return message{typ: websocket.MessageText, data: fmt.Appendf(nil,
		`{"message": %q, "connectionId":%q, "requestId":%q}`, text, c.cl.id, requestID)}
}

// enqueue queues m, waiting for room; it drops m if the connection ends
// first.
func (c *conn) enqueue(m message) {
	select {
	case <-c.done:
	case c.out <- m:
	}
}

// Errors of post.
var (
	errGone      = errors.New("gone")
	errQueueFull = errors.New("send queue full")
)

// post queues m without waiting: a full queue is errQueueFull, as API
// Gateway throttles a client whose buffer is full.
func (c *conn) post(m message) error {
	select {
	case <-c.done:
		return errGone
	default:
	}
	select {
	case c.out <- m:
		return nil
	default:
		return errQueueFull
	}
}
