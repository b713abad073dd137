package emulatortest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsbind/wsbind/local/emulator"
)

// Wait is how long Send waits for a reply and Push for a push.
const Wait = 10 * time.Second

// Frame is a reply or a push as a client reads it.
type Frame struct {
	Stream  string  `json:"stream"`
	Payload Payload `json:"payload"`
	// Raw is the frame as received.
	Raw string `json:"-"`
}

// Payload is a frame's payload; Status is 0 in a push.
type Payload struct {
	Action    string          `json:"action"`
	Status    int             `json:"response_status"`
	RequestID string          `json:"request_id"`
	Errors    json.RawMessage `json:"errors"`
	Data      json.RawMessage `json:"data"`
	PK        string          `json:"pk"`
	Model     string          `json:"model"`
	Version   int64           `json:"version"`
	Truncated bool            `json:"truncated"`
}

// IsReply reports whether f answers a request (it has a status).
func (f Frame) IsReply() bool { return f.Payload.Status != 0 }

// Object is the frame's data as a JSON object, failing the test if it
// is not one.
func (f Frame) Object(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(f.Payload.Data, &m); err != nil {
		t.Fatalf("data of %s: %v", f.Raw, err)
	}
	return m
}

// Client is one WebSocket connection to an emulator: replies are
// matched to requests by request_id, pushes kept in arrival order.
type Client struct {
	t      testing.TB
	conn   *websocket.Conn
	mu     sync.Mutex
	frames []Frame
	more   chan struct{}
	closed error
	seq    int
}

// Dial connects to em as the holder of token ("" for anonymous), closing
// the connection when the test ends.
func Dial(t testing.TB, em *emulator.Emulator, token string) (*Client, error) {
	t.Helper()
	url := em.WebSocketURL()
	if token != "" {
		url += "?token=" + token
	}
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("status %d: %w", resp.StatusCode, err)
		}
		return nil, err
	}
	c.SetReadLimit(1 << 20)
	cl := &Client{t: t, conn: c, more: make(chan struct{}, 1)}
	go cl.read()
	t.Cleanup(func() { c.CloseNow() })
	return cl, nil
}

// MustDial is Dial, failing the test on error.
func MustDial(t testing.TB, em *emulator.Emulator, token string) *Client {
	t.Helper()
	c, err := Dial(t, em, token)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

func (c *Client) read() {
	for {
		_, b, err := c.conn.Read(context.Background())
		c.mu.Lock()
		if err != nil {
			c.closed = err
			c.mu.Unlock()
			c.wake()
			return
		}
		var f Frame
		if jerr := json.Unmarshal(b, &f); jerr != nil {
			f.Payload.Status = -1
		}
		f.Raw = string(b)
		c.frames = append(c.frames, f)
		c.mu.Unlock()
		c.wake()
	}
}

func (c *Client) wake() {
	select {
	case c.more <- struct{}{}:
	default:
	}
}

// Await returns, and removes, the first frame received that matches ok,
// waiting up to d for one.
func (c *Client) Await(d time.Duration, ok func(Frame) bool) (Frame, error) {
	deadline := time.After(d)
	for {
		c.mu.Lock()
		for i, f := range c.frames {
			if ok(f) {
				c.frames = append(c.frames[:i:i], c.frames[i+1:]...)
				c.mu.Unlock()
				return f, nil
			}
		}
		closed := c.closed
		c.mu.Unlock()
		if closed != nil {
			return Frame{}, closed
		}
		select {
		case <-c.more:
		case <-deadline:
			return Frame{}, errors.New("timed out")
		}
	}
}

// Send sends a request on stream, a payload object without request_id
// (`{"action":"create","data":{...}}`), and returns its reply, failing
// the test if none comes.
func (c *Client) Send(stream, payload string) Frame {
	c.t.Helper()
	c.seq++
	id := fmt.Sprintf("r%d", c.seq)
	payload = strings.TrimSuffix(strings.TrimSpace(payload), "}")
	if payload != "{" {
		payload += ","
	}
	msg := fmt.Sprintf(`{"stream":%q,"payload":%s"request_id":%q}}`, stream, payload, id)
	if err := c.Write(msg); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	f, err := c.Await(Wait, func(f Frame) bool { return f.IsReply() && f.Payload.RequestID == id })
	if err != nil {
		c.t.Fatalf("reply to %s: %v", msg, err)
	}
	return f
}

// Write sends one text frame as it is.
func (c *Client) Write(msg string) error {
	return c.conn.Write(context.Background(), websocket.MessageText, []byte(msg))
}

// Push waits for a push of action on the object pk.
func (c *Client) Push(action, pk string) (Frame, error) {
	return c.Await(Wait, func(f Frame) bool {
		return !f.IsReply() && f.Payload.Action == action && f.Payload.PK == pk
	})
}

// Pushes returns the pushes received and not yet taken.
func (c *Client) Pushes() []Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Frame
	for _, f := range c.frames {
		if !f.IsReply() {
			out = append(out, f)
		}
	}
	return out
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close(websocket.StatusNormalClosure, "") }
