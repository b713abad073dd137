package emulator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/coder/websocket"

	"github.com/wsbind/wsbind/local/emulator"
	"github.com/wsbind/wsbind/local/faults"
)

// soakConn is one client of the soak: it counts every reply by
// request_id and every push by pk and version.
type soakConn struct {
	ws *websocket.Conn

	mu      sync.Mutex
	replies map[string][]soakReply // request_id → replies (want exactly one)
	pushes  map[string]int         // "pk#version" of update pushes → times received
	other   int                    // frames that are neither
	closed  error
	wake    chan struct{}
}

type soakReply struct {
	Status  int
	Version int64
	Data    json.RawMessage
	Raw     string
}

func soakDial(ctx context.Context, url string) (*soakConn, error) {
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(1 << 20)
	c := &soakConn{ws: ws, replies: map[string][]soakReply{}, pushes: map[string]int{}, wake: make(chan struct{}, 1)}
	go c.read()
	return c, nil
}

func (c *soakConn) read() {
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.closed = err
			c.mu.Unlock()
			c.notify()
			return
		}
		var f lcFrame
		jerr := json.Unmarshal(b, &f)
		c.mu.Lock()
		switch p := f.Payload; {
		case jerr == nil && p.Status != 0 && p.RequestID != nil:
			c.replies[*p.RequestID] = append(c.replies[*p.RequestID], soakReply{p.Status, p.Version, p.Data, string(b)})
		case jerr == nil && p.Status == 0 && p.Action == "update":
			c.pushes[p.PK+"#"+strconv.FormatInt(p.Version, 10)]++
		default:
			c.other++
		}
		c.mu.Unlock()
		c.notify()
	}
}

func (c *soakConn) notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// call sends a request and waits for its reply.
func (c *soakConn) call(ctx context.Context, id, stream, payload string) (soakReply, error) {
	msg := fmt.Sprintf(`{"stream":%q,"payload":%s,"request_id":%q}}`, stream, payload[:len(payload)-1], id)
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		return soakReply{}, err
	}
	for {
		c.mu.Lock()
		rs, closed := c.replies[id], c.closed
		c.mu.Unlock()
		if len(rs) > 0 {
			return rs[0], nil
		}
		if closed != nil {
			return soakReply{}, closed
		}
		select {
		case <-c.wake:
		case <-ctx.Done():
			return soakReply{}, fmt.Errorf("no reply to %s: %w", id, ctx.Err())
		}
	}
}

// TestEmulator_Soak runs a mixed workload through the emulator while
// the fault harness fails or throttles 10% of the pushes' posts and
// throttles 5% of DynamoDB requests, with three connections that never
// read: 500 connections, all subscribed to updates; writers create
// objects (with idempotency keys, retried on failure) and patch them
// (with if_version). It checks that every request is answered exactly
// once, that every committed update reaches every reading connection
// (repeats counted, as at-least-once allows), and that every
// acknowledged write is in the table afterwards.
// WSBIND_SOAK=long runs ten times the writes.
func TestEmulator_Soak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: not in -short")
	}
	conns, writers, patches := 500, 20, 2
	if os.Getenv("WSBIND_SOAK") == "long" {
		writers, patches = 60, 10
	}
	const stuck = 3
	em := start(t, func(c *emulator.Config) {
		if os.Getenv("WSBIND_SOAK_LOG") != "" {
			c.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
	})
	f := em.Faults()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	begin := time.Now()

	// The never-reading clients first, while the harness counts them.
	if err := f.Set(faults.Settings{Stuck: stuck, Seed: 12}); err != nil {
		t.Fatal(err)
	}
	all := make([]*soakConn, conns)
	var dialErr atomic.Value
	var wg sync.WaitGroup
	for i := range stuck {
		c, err := soakDial(ctx, em.WebSocketURL())
		if err != nil {
			t.Fatal(err)
		}
		all[i] = c
	}
	sem := make(chan struct{}, 32)
	for i := stuck; i < conns; i++ {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := soakDial(ctx, em.WebSocketURL())
			if err != nil {
				dialErr.Store(err)
				return
			}
			all[i] = c
		})
	}
	wg.Wait()
	if err, _ := dialErr.Load().(error); err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() {
		for _, c := range all {
			c.ws.CloseNow()
		}
	})
	// Everyone subscribes to updates; the stuck ones' subscribes are
	// served, but their replies never reach them.
	subscribe := `{"action":"subscribe","data":{"action":"update"}}`
	for i := range stuck {
		msg := `{"stream":"questions","payload":{"action":"subscribe","data":{"action":"update"},"request_id":"s"}}`
		if err := all[i].ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	var failures []string
	var fmu sync.Mutex
	fail := func(format string, args ...any) {
		fmu.Lock()
		defer fmu.Unlock()
		failures = append(failures, fmt.Sprintf(format, args...))
	}
	for i := stuck; i < conns; i++ {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if r, err := all[i].call(ctx, "sub", "questions", subscribe); err != nil || r.Status != 200 {
				fail("conn %d subscribe: %+v %v", i, r, err)
			}
		})
	}
	wg.Wait()

	// Faults on for the workload.
	soakFaults := faults.Settings{PostFail: 0.05, PostThrottle: 0.05, DynamoThrottle: 0.05, Seed: 13}
	if os.Getenv("WSBIND_SOAK_NOFAULTS") != "" {
		soakFaults = faults.Settings{}
	}
	if err := f.Set(soakFaults); err != nil {
		t.Fatal(err)
	}
	type object struct {
		pk      string
		version int64 // acknowledged
	}
	objects := make([]object, writers)
	var requests, retries atomic.Int64
	// do sends one request until it is answered with something other
	// than a 500 (each try with its own request_id; the idempotency key
	// makes the retries safe).
	do := func(c *soakConn, id, payload string) soakReply {
		for try := 0; ; try++ {
			requests.Add(1)
			r, err := c.call(ctx, fmt.Sprintf("%s.%d", id, try), "questions", payload)
			if err != nil {
				fail("%s: %v", id, err)
				return r
			}
			if r.Status != 500 || try == 5 {
				return r
			}
			retries.Add(1)
		}
	}
	// Readers: every other connection lists, then retrieves what it
	// listed, while the writers write.
	var reads atomic.Int64
	for i := stuck + writers; i < conns; i++ {
		c := all[i]
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r := do(c, fmt.Sprintf("c%d.list", i), `{"action":"list"}`)
			if r.Status != 200 {
				fail("conn %d list: %s", i, r.Raw)
				return
			}
			var page []struct {
				ID string `json:"id"`
			}
			json.Unmarshal(r.Data, &page)
			reads.Add(1)
			if len(page) > 0 {
				pk := page[i%len(page)].ID
				if r := do(c, fmt.Sprintf("c%d.get", i), fmt.Sprintf(`{"action":"retrieve","pk":%q}`, pk)); r.Status != 200 {
					fail("conn %d retrieve %s: %s", i, pk, r.Raw)
				}
				reads.Add(1)
			}
		})
	}
	for w := range writers {
		c := all[stuck+w]
		wg.Go(func() {
			key := fmt.Sprintf("soak-create-%d", w)
			r := do(c, fmt.Sprintf("w%d.create", w), fmt.Sprintf(`{"action":"create","idempotency_key":%q,"data":{"question_text":"soak %d"}}`, key, w))
			if r.Status != 201 {
				fail("writer %d create: %s", w, r.Raw)
				return
			}
			var obj struct {
				ID string `json:"id"`
			}
			json.Unmarshal(r.Data, &obj)
			objects[w] = object{pk: obj.ID, version: r.Version}
			for p := range patches {
				payload := fmt.Sprintf(`{"action":"patch","pk":%q,"if_version":%d,"idempotency_key":"soak-patch-%d-%d","data":{"question_text":"soak %d.%d"}}`,
					obj.ID, objects[w].version, w, p, w, p)
				r := do(c, fmt.Sprintf("w%d.patch%d", w, p), payload)
				if r.Status != 200 || r.Version != objects[w].version+1 {
					fail("writer %d patch %d: %s", w, p, r.Raw)
					return
				}
				objects[w].version = r.Version
			}
		})
	}
	wg.Wait()
	writesDone := time.Since(begin)

	// Every reading connection is owed one update push per acknowledged
	// patch: wait for them.
	var owed []string
	for _, o := range objects {
		for v := int64(2); v <= o.version; v++ {
			owed = append(owed, o.pk+"#"+strconv.FormatInt(v, 10))
		}
	}
	missing := func(c *soakConn) int {
		c.mu.Lock()
		defer c.mu.Unlock()
		n := 0
		for _, k := range owed {
			if c.pushes[k] == 0 {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(30 * time.Second)
	var short int
	for {
		short = 0
		for _, c := range all[stuck:] {
			short += missing(c)
		}
		if short == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if short > 0 {
		t.Errorf("%d pushes owed to reading connections never arrived", short)
	}
	// Every request answered exactly once, and nothing a client did not
	// ask for besides pushes.
	var replies, duplicates, closed int
	for i, c := range all[stuck:] {
		c.mu.Lock()
		for id, rs := range c.replies {
			replies++
			if len(rs) != 1 {
				t.Errorf("conn %d: request %s answered %d times", stuck+i, id, len(rs))
			}
		}
		for _, n := range c.pushes {
			duplicates += n - 1
		}
		if c.closed != nil {
			closed++
		}
		c.mu.Unlock()
	}
	if closed > 0 {
		t.Errorf("%d reading connections were closed", closed)
	}
	// Every acknowledged write is in the table, at the version
	// acknowledged.
	f.Set(faults.Settings{})
	db := emulator.DynamoDBClient(em.DynamoDBEndpoint())
	for w, o := range objects {
		if o.pk == "" {
			continue
		}
		out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
			TableName:      aws.String(emulator.Tables.Items),
			Key:            map[string]types.AttributeValue{"_stream": &types.AttributeValueMemberS{Value: "questions"}, "id": &types.AttributeValueMemberS{Value: o.pk}},
			ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			t.Fatal(err)
		}
		v, _ := out.Item["_version"].(*types.AttributeValueMemberN)
		if v == nil || v.Value != strconv.FormatInt(o.version, 10) {
			t.Errorf("writer %d: %s is at version %v in the table, want the acknowledged %d", w, o.pk, v, o.version)
		}
	}
	for _, msg := range failures {
		t.Error(msg)
	}
	counts := f.Counts()
	for _, c := range all[:stuck] {
		c.mu.Lock()
		if len(c.replies) > 0 {
			t.Errorf("a never-reading connection was answered: the harness did not stall it")
		}
		c.mu.Unlock()
	}
	if counts.Stuck != stuck {
		t.Errorf("the harness stalled %d connections, want %d", counts.Stuck, stuck)
	}
	t.Logf("soak: %d connections (%d never reading), %d writers x (1 create + %d patches), %d reads: %d requests (%d retried after a 500), %d replies, %d update pushes owed, %d not delivered, %d repeats; requests took %v, all done in %v",
		conns, stuck, writers, patches, reads.Load(), requests.Load(), retries.Load(), replies, len(owed)*(conns-stuck), short, duplicates,
		writesDone.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
	t.Logf("soak: faults injected: %s", counts)
}
