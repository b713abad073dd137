package emulator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsbind/wsbind/local/emulator"
)

// The load test's and the benchmarks' client: one WebSocket connection
// that matches replies to requests by request_id, flags every reply it
// did not wait for (a duplicate, or one to no request), and records every
// push with its time of arrival.

// lcReply is a reply as the load client reads it.
type lcReply struct {
	Status int
	Data   json.RawMessage
	Raw    string
	At     time.Time
}

// lcPush is a push as the load client reads it. Text is the object's
// question_text, which the load test makes unique per change.
type lcPush struct {
	Action, PK, Text string
	At               time.Time
}

// lcFrame is the part of a frame the load client reads.
type lcFrame struct {
	Payload struct {
		Action    string          `json:"action"`
		Status    int             `json:"response_status"`
		RequestID *string         `json:"request_id"`
		Data      json.RawMessage `json:"data"`
		PK        string          `json:"pk"`
		Version   int64           `json:"version"`
	} `json:"payload"`
}

type lcConn struct {
	name string
	c    *websocket.Conn

	mu       sync.Mutex
	pending  map[string]chan lcReply
	answered map[string]bool
	pushes   []lcPush
	problems []string // duplicate or unexpected replies, undecodable frames
	closed   error
	seq      int
}

// lcDial opens a connection; it is closed when the test ends.
func lcDial(tb testing.TB, em *emulator.Emulator, name string) (*lcConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, em.WebSocketURL(), nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%s: dial: status %d: %w", name, resp.StatusCode, err)
		}
		return nil, fmt.Errorf("%s: dial: %w", name, err)
	}
	c.SetReadLimit(1 << 20)
	lc := &lcConn{name: name, c: c, pending: map[string]chan lcReply{}, answered: map[string]bool{}}
	go lc.read()
	tb.Cleanup(func() { c.CloseNow() })
	return lc, nil
}

// lcDialAll opens n connections, a few handshakes at a time.
func lcDialAll(tb testing.TB, em *emulator.Emulator, n int, prefix string) []*lcConn {
	tb.Helper()
	conns := make([]*lcConn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(n, 32) {
		wg.Go(func() {
			for i := range next {
				conns[i], errs[i] = lcDial(tb, em, prefix+strconv.Itoa(i))
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		tb.Fatal(err)
	}
	return conns
}

func (lc *lcConn) read() {
	for {
		_, b, err := lc.c.Read(context.Background())
		at := time.Now()
		if err != nil {
			lc.mu.Lock()
			lc.closed = err
			lc.mu.Unlock()
			return
		}
		var f lcFrame
		if err := json.Unmarshal(b, &f); err != nil {
			lc.problem("undecodable frame %q: %v", b, err)
			continue
		}
		p := &f.Payload
		if p.Status == 0 {
			var obj struct {
				Text string `json:"question_text"`
			}
			json.Unmarshal(p.Data, &obj) // a push of another shape has no text
			lc.mu.Lock()
			lc.pushes = append(lc.pushes, lcPush{Action: p.Action, PK: p.PK, Text: obj.Text, At: at})
			lc.mu.Unlock()
			continue
		}
		r := lcReply{Status: p.Status, Data: p.Data, Raw: string(b), At: at}
		if p.RequestID == nil {
			lc.problem("reply without a request_id: %s", b)
			continue
		}
		id := *p.RequestID
		lc.mu.Lock()
		ch, ok := lc.pending[id]
		dup := lc.answered[id]
		delete(lc.pending, id)
		lc.answered[id] = true
		lc.mu.Unlock()
		switch {
		case ok:
			ch <- r
		case dup:
			lc.problem("a second reply to %s: %s", id, b)
		default:
			lc.problem("a reply to no request: %s", b)
		}
	}
}

func (lc *lcConn) problem(format string, args ...any) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.problems = append(lc.problems, lc.name+": "+fmt.Sprintf(format, args...))
}

// lcMessage is a questions request. pk and data are left out when "".
func lcMessage(action, pk, data, id string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"stream":"questions","payload":{"action":%q`, action)
	if pk != "" {
		fmt.Fprintf(&b, `,"pk":%q`, pk)
	}
	if data != "" {
		fmt.Fprintf(&b, `,"data":%s`, data)
	}
	fmt.Fprintf(&b, `,"request_id":%q}}`, id)
	return []byte(b.String())
}

// do sends a request and waits up to d for its reply. sent is when the
// request was about to be written.
func (lc *lcConn) do(action, pk, data string, d time.Duration) (r lcReply, sent time.Time, err error) {
	lc.mu.Lock()
	lc.seq++
	id := lc.name + "-" + strconv.Itoa(lc.seq)
	ch := make(chan lcReply, 1)
	lc.pending[id] = ch
	lc.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	sent = time.Now()
	if err := lc.c.Write(ctx, websocket.MessageText, lcMessage(action, pk, data, id)); err != nil {
		return lcReply{}, sent, fmt.Errorf("%s: write %s: %w", lc.name, id, err)
	}
	select {
	case r := <-ch:
		return r, sent, nil
	case <-ctx.Done():
		lc.mu.Lock()
		closed := lc.closed
		lc.mu.Unlock()
		return lcReply{}, sent, fmt.Errorf("%s: no reply to %s %s within %v (connection: %v)", lc.name, action, id, d, closed)
	}
}

// pushesCopy returns the pushes received so far.
func (lc *lcConn) pushesCopy() []lcPush {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return slices.Clone(lc.pushes)
}

func (lc *lcConn) pushCount() int {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return len(lc.pushes)
}

// state returns the connection's problems and its read error.
func (lc *lcConn) state() ([]string, error) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return slices.Clone(lc.problems), lc.closed
}

// lcID reads the id of a created object.
func lcID(r lcReply) string {
	var obj struct {
		ID string `json:"id"`
	}
	json.Unmarshal(r.Data, &obj)
	return obj.ID
}

// lcPercentile is the p-th percentile (0 < p <= 100) of sorted ds.
func lcPercentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func lcMillis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// lcPeakRSS is the process's peak resident set size (VmHWM), or "" where
// /proc does not tell.
func lcPeakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
