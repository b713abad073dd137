package dynamo_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsbind/wsbind/internal/abi"
	"github.com/wsbind/wsbind/internal/backend/backendtest"
	"github.com/wsbind/wsbind/internal/backend/dynamo"
	"github.com/wsbind/wsbind/resource"
)

// endpoint returns the DynamoDB endpoint under test, or skips: the suite
// needs a real DynamoDB API (dynalite: `dynalite --port 18001`, then
// AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:18001). With
// WSBIND_REQUIRE_DYNAMODB=1 (CI) a missing endpoint fails instead.
func endpoint(t *testing.T) string {
	t.Helper()
	ep := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB")
	if ep == "" {
		if os.Getenv("WSBIND_REQUIRE_DYNAMODB") == "1" {
			t.Fatal("WSBIND_REQUIRE_DYNAMODB=1 but AWS_ENDPOINT_URL_DYNAMODB is not set")
		}
		t.Skip("AWS_ENDPOINT_URL_DYNAMODB is not set; start dynalite (dynalite --port 18001) and set it to http://127.0.0.1:18001")
	}
	return ep
}

// wire counts the requests that reach the endpoint, by operation (the
// X-Amz-Target header), retries included.
type wire struct {
	next http.RoundTripper
	mu   sync.Mutex
	ops  map[string]int
}

func (w *wire) RoundTrip(r *http.Request) (*http.Response, error) {
	op := r.Header.Get("X-Amz-Target")
	op = op[strings.LastIndexByte(op, '.')+1:]
	w.mu.Lock()
	w.ops[op]++
	w.mu.Unlock()
	return w.next.RoundTrip(r)
}

func (w *wire) take() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.ops
	w.ops = map[string]int{}
	return out
}

// newClient builds a client from explicit settings only: no shared
// config files, no ambient AWS_* variables but the endpoint.
func newClient(t *testing.T, w *wire) *dynamodb.Client {
	ep := endpoint(t)
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	}
	if w != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		w.next, w.ops = tr, map[string]int{}
		cfg.HTTPClient = &http.Client{Transport: w}
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ep) })
}

// newTables creates uniquely named tables and deletes them after the test.
func newTables(t *testing.T, c *dynamodb.Client) dynamo.Tables {
	var b [4]byte
	for i := range b {
		b[i] = byte(rand.N(256))
	}
	p := "wsbind-test-" + hex.EncodeToString(b[:])
	tables := dynamo.Tables{Items: p + "-items", Connections: p + "-connections", Subscriptions: p + "-subscriptions"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := dynamo.CreateTables(ctx, c, tables); err != nil {
		t.Fatal(err)
	}
	t.Logf("CreateTables: %v", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := dynamo.DeleteTables(ctx, c, tables); err != nil {
			t.Error(err)
		}
	})
	return tables
}

func TestConformance(t *testing.T) {
	c := newClient(t, nil)
	s := dynamo.New(dynamo.Config{Client: c, Tables: newTables(t, c)})
	backendtest.Run(t, func(*testing.T) backendtest.Backend { return s })
}

func TestCreateTables(t *testing.T) {
	c := newClient(t, nil)
	tables := newTables(t, c)
	out, err := c.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: &tables.Subscriptions})
	if err != nil {
		t.Fatal(err)
	}
	ix := out.Table.GlobalSecondaryIndexes
	if len(ix) != 1 || *ix[0].IndexName != dynamo.IndexByConn || *ix[0].KeySchema[0].AttributeName != "conn_id" {
		t.Errorf("subscriptions indexes: got %+v, want by_conn on conn_id", ix)
	}
	// A second call fails rather than silently reusing other tables.
	if err := dynamo.CreateTables(t.Context(), c, tables); err == nil {
		t.Error("CreateTables of existing tables: got no error")
	}
}

// counting is the instrumented client: it counts calls per operation and
// whether a failed condition came back with the stored item.
type counting struct {
	dynamo.Client
	mu      sync.Mutex
	ops     map[string]int
	oldItem bool
}

func (c *counting) add(op string) {
	c.mu.Lock()
	c.ops[op]++
	c.mu.Unlock()
}

func (c *counting) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.ops
	c.ops = map[string]int{}
	return out
}

func (c *counting) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.add("GetItem")
	return c.Client.GetItem(ctx, in, o...)
}

func (c *counting) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.add("PutItem")
	out, err := c.Client.PutItem(ctx, in, o...)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) && len(ccf.Item) > 0 {
		c.mu.Lock()
		c.oldItem = true
		c.mu.Unlock()
	}
	return out, err
}

func (c *counting) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c.add("DeleteItem")
	return c.Client.DeleteItem(ctx, in, o...)
}

func (c *counting) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.add("Query")
	return c.Client.Query(ctx, in, o...)
}

func (c *counting) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	c.add("BatchWriteItem")
	return c.Client.BatchWriteItem(ctx, in, o...)
}

// TestBudget checks the requests of every operation against DESIGN.md
// section 3, counted both at the client interface and on the wire.
func TestBudget(t *testing.T) {
	w := &wire{}
	raw := newClient(t, w)
	tables := newTables(t, raw)
	c := &counting{Client: raw, ops: map[string]int{}}
	s := dynamo.New(dynamo.Config{Client: c, Tables: tables})
	ctx := t.Context()
	w.take()
	scans := 0
	step := func(name string, want map[string]int, f func() error) {
		t.Helper()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, onWire := c.take(), w.take()
		scans += onWire["Scan"]
		if !maps.Equal(got, want) {
			t.Errorf("%s: got requests %v, want %v", name, got, want)
		}
		if !maps.Equal(onWire, want) {
			t.Errorf("%s: got %v on the wire, want %v", name, onWire, want)
		}
	}
	one := func(op string) map[string]int { return map[string]int{op: 1} }
	item := func(id string) resource.Item {
		return resource.Item{ID: id, Data: []byte(`{"id":"` + id + `","text":"hello","n":1}`)}
	}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		step("Create "+id, one("PutItem"), func() error { return s.Create(ctx, "st", item(id)) })
	}
	step("Create existing", one("PutItem"), func() error {
		if err := s.Create(ctx, "st", item("a")); !errors.Is(err, resource.ErrExists) {
			return fmt.Errorf("got %v, want ErrExists", err)
		}
		return nil
	})
	step("Get", one("GetItem"), func() error { _, err := s.Get(ctx, "st", "a"); return err })
	step("Get missing", one("GetItem"), func() error {
		if _, err := s.Get(ctx, "st", "zz"); !errors.Is(err, resource.ErrNotFound) {
			return fmt.Errorf("got %v, want ErrNotFound", err)
		}
		return nil
	})
	step("Replace", one("PutItem"), func() error {
		_, err := s.Replace(ctx, "st", resource.Item{ID: "a", Version: 1, Data: item("a").Data})
		return err
	})
	// A conflict is one write, plus one read only when the server does not
	// return the stored item with the failed condition (emulators).
	if err := func() error {
		_, err := s.Replace(ctx, "st", resource.Item{ID: "a", Version: 1, Data: item("a").Data})
		if !errors.Is(err, resource.ErrConflict) {
			return fmt.Errorf("got %v, want ErrConflict", err)
		}
		return nil
	}(); err != nil {
		t.Fatalf("Replace conflict: %v", err)
	}
	want := map[string]int{"PutItem": 1}
	if !c.oldItem {
		want["GetItem"] = 1
		t.Log("the endpoint does not return ALL_OLD with a failed condition: a conflict costs a read")
	}
	if got, onWire := c.take(), w.take(); !maps.Equal(got, want) || !maps.Equal(onWire, want) {
		t.Errorf("Replace conflict: got %v (wire %v), want %v", got, onWire, want)
	}
	step("Delete", one("DeleteItem"), func() error { _, err := s.Delete(ctx, "st", "e"); return err })
	step("Delete missing", one("DeleteItem"), func() error {
		if _, err := s.Delete(ctx, "st", "e"); !errors.Is(err, resource.ErrNotFound) {
			return fmt.Errorf("got %v, want ErrNotFound", err)
		}
		return nil
	})
	step("List", one("Query"), func() error {
		items, err := s.List(ctx, "st", 0, 25)
		if err == nil && len(items) != 4 {
			err = fmt.Errorf("got %d items, want 4", len(items))
		}
		return err
	})
	step("List with offset", one("Query"), func() error {
		items, err := s.List(ctx, "st", 2, 1)
		if err == nil && (len(items) != 1 || items[0].ID != "c") {
			err = fmt.Errorf("got %+v, want c", items)
		}
		return err
	})
	step("Count", one("Query"), func() error {
		n, err := s.Count(ctx, "st")
		if err == nil && n != 4 {
			err = fmt.Errorf("got %d, want 4", n)
		}
		return err
	})
	step("PutConn", one("PutItem"), func() error {
		return s.PutConn(ctx, abi.ConnEvent{ConnID: "k", User: resource.User{ID: "u", Claims: map[string]string{"a": "b"}}})
	})
	for _, n := range []int{0, 1, 25, 26, 60} {
		conn := fmt.Sprint("conn", n)
		for i := range n {
			step("Subscribe", one("PutItem"), func() error {
				return s.Subscribe(ctx, resource.Subscription{Topic: fmt.Sprint("st#update#", i), ConnID: conn})
			})
		}
		step("Subscribers", one("Query"), func() error {
			subs, err := s.Subscribers(ctx, "st#update#0")
			if err == nil && len(subs) == 0 && n > 0 {
				err = errors.New("no subscribers")
			}
			return err
		})
		want := map[string]int{"DeleteItem": 1, "Query": 1}
		if b := (n + 24) / 25; b > 0 {
			want["BatchWriteItem"] = b
		}
		step(fmt.Sprintf("DropConn of %d subscriptions", n), want, func() error { return s.DropConn(ctx, conn) })
	}
	// Items of 300 KB: two fit in one query page.
	for i := range 8 {
		step("Create big", one("PutItem"), func() error {
			return s.Create(ctx, "big", resource.Item{ID: fmt.Sprint(i), Data: []byte(`{"b":"` + strings.Repeat("x", 300*1024) + `"}`)})
		})
	}
	step("List of one page of big items", one("Query"), func() error {
		items, err := s.List(ctx, "big", 0, 2)
		if err == nil && len(items) != 2 {
			err = fmt.Errorf("got %d items, want 2", len(items))
		}
		return err
	})
	// 2.4 MB of items: DynamoDB cuts the query at 1 MB (servers differ on
	// whether the item crossing it is in the page), so two or three
	// queries (a last, empty one when the cut falls at the end).
	pages := func(name string, f func() error) {
		t.Helper()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, onWire := c.take(), w.take()
		if !maps.Equal(got, onWire) || len(got) != 1 || got["Query"] < 2 || got["Query"] > 3 {
			t.Errorf("%s: got requests %v (wire %v), want 2 or 3 Query", name, got, onWire)
		}
	}
	pages("List across 1 MB pages", func() error {
		items, err := s.List(ctx, "big", 1, 7)
		if err == nil && len(items) != 7 {
			err = fmt.Errorf("got %d items, want 7", len(items))
		}
		return err
	})
	pages("Count across 1 MB pages", func() error {
		n, err := s.Count(ctx, "big")
		if err == nil && n != 8 {
			err = fmt.Errorf("got %d, want 8", n)
		}
		return err
	})
	if scans != 0 {
		t.Errorf("%d Scans on the wire, want none", scans)
	}
}

// TestExpired checks that records past their ttl are not read, and that
// the ttl written is the connection lifetime.
func TestExpired(t *testing.T) {
	c := newClient(t, nil)
	tables := newTables(t, c)
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	s := dynamo.New(dynamo.Config{Client: c, Tables: tables, Now: clock})
	ctx := t.Context()
	sub := resource.Subscription{Topic: "st#create", ConnID: "c1"}
	if err := s.Subscribe(ctx, sub); err != nil {
		t.Fatal(err)
	}
	if err := s.PutConn(ctx, abi.ConnEvent{ConnID: "c1", At: now.UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &tables.Connections, Key: map[string]types.AttributeValue{
		"conn_id": &types.AttributeValueMemberS{Value: "c1"}}})
	if err != nil {
		t.Fatal(err)
	}
	wantTTL := fmt.Sprint(now.Add(dynamo.Lifetime).Unix())
	if ttl, ok := out.Item["ttl"].(*types.AttributeValueMemberN); !ok || ttl.Value != wantTTL {
		t.Errorf("connection ttl: got %#v, want %s", out.Item["ttl"], wantTTL)
	}
	set(now.Add(dynamo.Lifetime - time.Second))
	if subs, err := s.Subscribers(ctx, sub.Topic); err != nil || len(subs) != 1 {
		t.Errorf("Subscribers before expiry: got %v, %v", subs, err)
	}
	if _, ok, err := s.Conn(ctx, "c1"); !ok || err != nil {
		t.Errorf("Conn before expiry: got %v, %v", ok, err)
	}
	set(now.Add(dynamo.Lifetime))
	if subs, err := s.Subscribers(ctx, sub.Topic); err != nil || len(subs) != 0 {
		t.Errorf("Subscribers after expiry: got %v, %v, want none", subs, err)
	}
	if _, ok, err := s.Conn(ctx, "c1"); ok || err != nil {
		t.Errorf("Conn after expiry: got %v, %v, want none", ok, err)
	}
	// Expired among live ones, as DynamoDB keeps them for days.
	if err := s.Subscribe(ctx, resource.Subscription{Topic: sub.Topic, ConnID: "c2"}); err != nil {
		t.Fatal(err)
	}
	if subs, err := s.Subscribers(ctx, sub.Topic); err != nil || len(subs) != 1 || subs[0].ConnID != "c2" {
		t.Errorf("Subscribers: got %v, %v, want c2 alone", subs, err)
	}
}

// TestLimits checks that data DynamoDB cannot hold is refused with a
// clear error, before any request.
func TestLimits(t *testing.T) {
	w := &wire{}
	c := newClient(t, w)
	s := dynamo.New(dynamo.Config{Client: c, Tables: newTables(t, c)})
	w.take()
	for _, tc := range []struct {
		name, data string
		want       error
		text       string
	}{
		{"39 digits", `{"n":123456789012345678901234567890123456789}`, dynamo.ErrInvalid, "39 significant digits"},
		{"overflow", `{"n":1e126}`, dynamo.ErrInvalid, "outside DynamoDB's range"},
		{"underflow", `{"n":[1e-131]}`, dynamo.ErrInvalid, "outside DynamoDB's range"},
		{"huge exponent", `{"n":{"m":1e99999999999999999999}}`, dynamo.ErrInvalid, "outside DynamoDB's range"},
		{"not an object", `[1]`, dynamo.ErrInvalid, "not a JSON object"},
		{"not JSON", `{"a":}`, dynamo.ErrInvalid, ""},
		{"trailing data", `{"a":1}{}`, dynamo.ErrInvalid, "after the JSON object"},
		{"table's name", `{"_version":5}`, dynamo.ErrInvalid, "_version"},
		{"other id", `{"id":"other"}`, dynamo.ErrInvalid, "id"},
		{"numeric id", `{"id":5}`, dynamo.ErrInvalid, "id"},
		{"too deep", `{"d":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `}`, dynamo.ErrInvalid, "32 levels"},
		{"over 400 KB", `{"b":"` + strings.Repeat("x", dynamo.MaxItemSize) + `"}`, dynamo.ErrTooLarge, "bytes"},
		{"over 400 KB in UTF-8", `{"b":"` + strings.Repeat("\u00e9", dynamo.MaxItemSize/2) + `"}`, dynamo.ErrTooLarge, "bytes"},
		{"over 400 KB of names", `{` + strings.Repeat(`"`+strings.Repeat("k", 1000)+`":1,`, 300)[:300*1005-1] + `}`, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Create(t.Context(), "st", resource.Item{ID: "x", Data: []byte(tc.data)})
			if tc.want == nil { // a repeated member counts once
				if err != nil {
					t.Fatalf("got %v, want it stored", err)
				}
				if _, err := s.Delete(t.Context(), "st", "x"); err != nil {
					t.Fatal(err)
				}
				w.take()
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("got %v, want %v saying %q", err, tc.want, tc.text)
			}
			if ops := w.take(); len(ops) != 0 {
				t.Errorf("sent %v, want no request", ops)
			}
			if _, err := s.Replace(t.Context(), "st", resource.Item{ID: "x", Version: 1, Data: []byte(tc.data)}); !errors.Is(err, tc.want) {
				t.Errorf("Replace: got %v, want %v", err, tc.want)
			}
		})
	}
	// Keys: an id or stream DynamoDB cannot key on is never found, and
	// cannot be created.
	long := strings.Repeat("k", 1025)
	if err := s.Create(t.Context(), "st", resource.Item{ID: long, Data: []byte(`{}`)}); !errors.Is(err, dynamo.ErrInvalid) {
		t.Errorf("Create with a 1025-byte id: got %v, want ErrInvalid", err)
	}
	if err := s.Create(t.Context(), "st", resource.Item{ID: "", Data: []byte(`{}`)}); !errors.Is(err, dynamo.ErrInvalid) {
		t.Errorf("Create with an empty id: got %v, want ErrInvalid", err)
	}
	if ops := w.take(); len(ops) != 0 {
		t.Errorf("sent %v, want no request", ops)
	}
}

// TestOtherWriters reads items that another tool wrote: no _version,
// sets, binary, numbers in exponent form.
func TestOtherWriters(t *testing.T) {
	c := newClient(t, nil)
	tables := newTables(t, c)
	s := dynamo.New(dynamo.Config{Client: c, Tables: tables})
	ctx := t.Context()
	_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &tables.Items, Item: map[string]types.AttributeValue{
		"_stream": &types.AttributeValueMemberS{Value: "st"},
		"id":      &types.AttributeValueMemberS{Value: "o1"},
		"_other":  &types.AttributeValueMemberS{Value: "hidden"},
		"tags":    &types.AttributeValueMemberSS{Value: []string{"b", "a"}},
		"nums":    &types.AttributeValueMemberNS{Value: []string{"1.50"}},
		"bin":     &types.AttributeValueMemberB{Value: []byte{0, 1, 2}},
		"big":     &types.AttributeValueMemberN{Value: "1E+3"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	it, err := s.Get(ctx, "st", "o1")
	if err != nil {
		t.Fatal(err)
	}
	if it.Version != 0 {
		t.Errorf("version: got %d, want 0", it.Version)
	}
	// Sets come back in the server's order; compare them as sets.
	var tags string
	if strings.Contains(string(it.Data), `"tags":["a","b"]`) {
		tags = `["a","b"]`
	} else {
		tags = `["b","a"]`
	}
	want := `{"id":"o1","big":1000,"bin":"AAEC","nums":[1.5],"tags":` + tags + `}`
	if string(it.Data) != want {
		t.Errorf("data: got %s, want %s", it.Data, want)
	}
	// Version 0 is replaced under "no version yet", once.
	if v, err := s.Replace(ctx, "st", resource.Item{ID: "o1", Version: 0, Data: []byte(`{"id":"o1"}`)}); err != nil || v != 1 {
		t.Fatalf("Replace at version 0: got %d, %v, want 1", v, err)
	}
	if _, err := s.Replace(ctx, "st", resource.Item{ID: "o1", Version: 0, Data: []byte(`{"id":"o1"}`)}); !errors.Is(err, resource.ErrConflict) {
		t.Errorf("second Replace at version 0: got %v, want ErrConflict", err)
	}
	if _, err := s.Replace(ctx, "st", resource.Item{ID: "o9", Version: 0, Data: []byte(`{"id":"o9"}`)}); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("Replace at version 0 of nothing: got %v, want ErrNotFound", err)
	}
}

// throttling leaves every batch's requests after the first unprocessed
// for the first few calls, as DynamoDB does when a partition throttles.
type throttling struct {
	dynamo.Client
	mu       sync.Mutex
	throttle int
	calls    int
}

func (c *throttling) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	c.mu.Lock()
	c.calls++
	throttle := c.throttle > 0
	c.throttle--
	c.mu.Unlock()
	if !throttle {
		return c.Client.BatchWriteItem(ctx, in, o...)
	}
	sent, left := map[string][]types.WriteRequest{}, map[string][]types.WriteRequest{}
	for table, reqs := range in.RequestItems {
		sent[table], left[table] = reqs[:1], reqs[1:]
	}
	out, err := c.Client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: sent}, o...)
	if err != nil {
		return nil, err
	}
	for table, reqs := range out.UnprocessedItems {
		left[table] = append(left[table], reqs...)
	}
	out.UnprocessedItems = left
	return out, nil
}

func TestDropConn_Unprocessed(t *testing.T) {
	dynamo.SetBackoff(t, time.Millisecond, 4*time.Millisecond)
	c := newClient(t, nil)
	tables := newTables(t, c)
	ctx := t.Context()
	for _, tc := range []struct {
		throttle int
		fail     bool
	}{{throttle: 3}, {throttle: 100, fail: true}} {
		th := &throttling{Client: c, throttle: tc.throttle}
		s := dynamo.New(dynamo.Config{Client: th, Tables: tables})
		conn := fmt.Sprint("t", tc.throttle)
		for i := range 30 {
			if err := s.Subscribe(ctx, resource.Subscription{Topic: fmt.Sprint("st#update#", i), ConnID: conn}); err != nil {
				t.Fatal(err)
			}
		}
		err := s.DropConn(ctx, conn)
		if tc.fail {
			if err == nil || !strings.Contains(err.Error(), "unprocessed") {
				t.Errorf("throttled for good: got %v, want an error naming the unprocessed deletes", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("DropConn: %v", err)
		}
		// 30 deletes: a batch of 25 sent as 1+1+1+22, then one of 5.
		if th.calls != 5 {
			t.Errorf("BatchWriteItem calls: got %d, want 5", th.calls)
		}
		for i := range 30 {
			subs, err := s.Subscribers(ctx, fmt.Sprint("st#update#", i))
			if err != nil || slices.ContainsFunc(subs, func(s resource.Subscription) bool { return s.ConnID == conn }) {
				t.Fatalf("topic %d after DropConn: %v, %v", i, subs, err)
			}
		}
	}
}
