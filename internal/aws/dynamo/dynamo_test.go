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

	"github.com/wsbind/wsbind/internal/aws/dynamo"
	"github.com/wsbind/wsbind/internal/core/identity"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/testkit/storetest"
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
	tables := dynamo.Tables{Items: p + "-items", Connections: p + "-connections", Subscriptions: p + "-subscriptions", Idempotency: p + "-idempotency", History: p + "-history"}
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

// lister gives the store the suite's SubscriptionLister: a connection's
// records, read with a strongly consistent Scan of the subscriptions table
// (the by_conn index cannot be read consistently), expired ones included.
type lister struct {
	*dynamo.Store
	c      *dynamodb.Client
	tables dynamo.Tables
}

func (l lister) ConnSubscriptions(ctx context.Context, connID string) ([]store.Subscription, error) {
	in := &dynamodb.ScanInput{
		TableName:                 &l.tables.Subscriptions,
		FilterExpression:          aws.String("#c = :c"),
		ExpressionAttributeNames:  map[string]string{"#c": "conn_id"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": &types.AttributeValueMemberS{Value: connID}},
		ConsistentRead:            aws.Bool(true),
	}
	var out []store.Subscription
	for {
		page, err := l.c.Scan(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, m := range page.Items {
			sub := store.Subscription{ConnID: connID}
			if v, ok := m["topic"].(*types.AttributeValueMemberS); ok {
				sub.Topic = v.Value
			}
			if v, ok := m["filter"].(*types.AttributeValueMemberS); ok {
				sub.Filter = v.Value
			}
			out = append(out, sub)
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

func TestConformance(t *testing.T) {
	c := newClient(t, nil)
	tables := newTables(t, c)
	s := lister{Store: dynamo.New(dynamo.Config{Client: c, Tables: tables}), c: c, tables: tables}
	storetest.Run(t, func(*testing.T) storetest.Backend { return s })
}

func TestCreateTables(t *testing.T) {
	c := newClient(t, nil)
	tables := newTables(t, c)
	out, err := c.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: &tables.Subscriptions})
	if err != nil {
		t.Fatal(err)
	}
	ix := out.Table.GlobalSecondaryIndexes
	if len(ix) != 1 || *ix[0].IndexName != dynamo.IndexByConn || *ix[0].KeySchema[0].AttributeName != "conn_id" ||
		*ix[0].KeySchema[1].AttributeName != "sub" {
		t.Errorf("subscriptions indexes: got %+v, want by_conn on conn_id, sub", ix)
	}
	out, err = c.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: &tables.Items})
	if err != nil {
		t.Fatal(err)
	}
	ix = out.Table.GlobalSecondaryIndexes
	if len(ix) != 1 || *ix[0].IndexName != dynamo.IndexByBinding || *ix[0].KeySchema[0].AttributeName != "_binding" ||
		ix[0].Projection.ProjectionType != types.ProjectionTypeAll {
		t.Errorf("items indexes: got %+v, want by_binding on _binding, projecting all", ix)
	}
	// A second call fails rather than silently reusing other tables.
	if err := dynamo.CreateTables(t.Context(), c, tables); err == nil {
		t.Error("CreateTables of existing tables: got no error")
	}
}

// counting is the instrumented client: it counts calls per operation and
// whether a failed condition came back with the stored item, and keeps
// what each Query asked and read.
type counting struct {
	dynamo.Client
	mu      sync.Mutex
	ops     map[string]int
	oldItem bool
	queries []query
}

// query is one Query sent: its index ("" for the table), whether it had
// a filter or asked for a consistent read, and the items it read.
type query struct {
	index              string
	filter, consistent bool
	scanned            int32
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
	out, err := c.Client.DeleteItem(ctx, in, o...)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) && len(ccf.Item) > 0 {
		c.mu.Lock()
		c.oldItem = true
		c.mu.Unlock()
	}
	return out, err
}

func (c *counting) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.add("Query")
	out, err := c.Client.Query(ctx, in, o...)
	q := query{index: aws.ToString(in.IndexName), filter: in.FilterExpression != nil, consistent: aws.ToBool(in.ConsistentRead)}
	if err == nil {
		q.scanned = out.ScannedCount
	}
	c.mu.Lock()
	c.queries = append(c.queries, q)
	c.mu.Unlock()
	return out, err
}

// takeQueries returns the queries sent since the last call.
func (c *counting) takeQueries() []query {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.queries
	c.queries = nil
	return out
}

func (c *counting) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	c.add("BatchWriteItem")
	return c.Client.BatchWriteItem(ctx, in, o...)
}

func (c *counting) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.add("UpdateItem")
	return c.Client.UpdateItem(ctx, in, o...)
}

// TestBudget checks the requests of every operation against the budget
// table of RATIONALE.md ("Why is a scope a partition of its own?"),
// counted both at the client interface and on the wire.
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
	item := func(id string) store.Item {
		return store.Item{ID: id, Data: []byte(`{"id":"` + id + `","text":"hello","n":1}`)}
	}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		step("Create "+id, one("PutItem"), func() error { return s.Create(ctx, store.Part{Stream: "st"}, item(id)) })
	}
	step("Create existing", one("PutItem"), func() error {
		if err := s.Create(ctx, store.Part{Stream: "st"}, item("a")); !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("got %v, want ErrExists", err)
		}
		return nil
	})
	step("Get", one("GetItem"), func() error { _, err := s.Get(ctx, store.Part{Stream: "st"}, "a"); return err })
	step("Get missing", one("GetItem"), func() error {
		if _, err := s.Get(ctx, store.Part{Stream: "st"}, "zz"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("got %v, want ErrNotFound", err)
		}
		return nil
	})
	step("Replace", one("PutItem"), func() error {
		_, err := s.Replace(ctx, store.Part{Stream: "st"}, store.Item{ID: "a", Version: 1, Data: item("a").Data})
		return err
	})
	// A conflict is one write, plus one read only when the server does not
	// return the stored item with the failed condition (emulators).
	if err := func() error {
		_, err := s.Replace(ctx, store.Part{Stream: "st"}, store.Item{ID: "a", Version: 1, Data: item("a").Data})
		if !errors.Is(err, store.ErrConflict) {
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
	step("Delete", one("DeleteItem"), func() error { _, err := s.Delete(ctx, store.Part{Stream: "st"}, "e", store.AnyVersion); return err })
	step("Delete missing", one("DeleteItem"), func() error {
		if _, err := s.Delete(ctx, store.Part{Stream: "st"}, "e", store.AnyVersion); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("got %v, want ErrNotFound", err)
		}
		return nil
	})
	step("List", one("Query"), func() error {
		items, err := s.List(ctx, store.Part{Stream: "st"}, "", 0, 25)
		if err == nil && len(items) != 4 {
			err = fmt.Errorf("got %d items, want 4", len(items))
		}
		return err
	})
	step("List with offset", one("Query"), func() error {
		items, err := s.List(ctx, store.Part{Stream: "st"}, "", 2, 1)
		if err == nil && (len(items) != 1 || items[0].ID != "c") {
			err = fmt.Errorf("got %+v, want c", items)
		}
		return err
	})
	step("Count", one("Query"), func() error {
		n, err := s.Count(ctx, store.Part{Stream: "st"})
		if err == nil && n != 4 {
			err = fmt.Errorf("got %d, want 4", n)
		}
		return err
	})
	step("PutConn", one("PutItem"), func() error {
		return s.PutConn(ctx, store.Conn{ConnID: "k", User: identity.User{ID: "u", Claims: map[string]string{"a": "b"}}})
	})
	// A subscribe writes, then reads its connection back (RATIONALE: "Why
	// does a subscribe read its connection back?").
	subscribe := map[string]int{"PutItem": 1, "GetItem": 1}
	for _, n := range []int{0, 1, 25, 26, 60} {
		conn := fmt.Sprint("conn", n)
		step("PutConn", one("PutItem"), func() error { return s.PutConn(ctx, store.Conn{ConnID: conn}) })
		for i := range n {
			step("Subscribe", subscribe, func() error {
				return s.Subscribe(ctx, store.Subscription{Topic: fmt.Sprint("st#update#", i), ConnID: conn})
			})
		}
		step("Subscribers", one("Query"), func() error {
			subs, err := s.Subscribers(ctx, []string{"st#update#0"})
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
		// A subscribe that comes after the drop takes itself back.
		step("Subscribe of a dropped connection", map[string]int{"PutItem": 1, "GetItem": 1, "DeleteItem": 1}, func() error {
			return s.Subscribe(ctx, store.Subscription{Topic: "st#update#0", ConnID: conn})
		})
	}
	// Items of 300 KB: two fit in one query page.
	for i := range 8 {
		step("Create big", one("PutItem"), func() error {
			return s.Create(ctx, store.Part{Stream: "big"}, store.Item{ID: fmt.Sprint(i), Data: []byte(`{"b":"` + strings.Repeat("x", 300*1024) + `"}`)})
		})
	}
	step("List of one page of big items", one("Query"), func() error {
		items, err := s.List(ctx, store.Part{Stream: "big"}, "", 0, 2)
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
		items, err := s.List(ctx, store.Part{Stream: "big"}, "", 1, 7)
		if err == nil && len(items) != 7 {
			err = fmt.Errorf("got %d items, want 7", len(items))
		}
		return err
	})
	pages("Count across 1 MB pages", func() error {
		n, err := s.Count(ctx, store.Part{Stream: "big"})
		if err == nil && n != 8 {
			err = fmt.Errorf("got %d, want 8", n)
		}
		return err
	})
	// An idempotency key: the first request claims it with one
	// conditional PutItem and stores its reply with one UpdateItem; a
	// repeat is one failed PutItem, which brings the record back (plus
	// a GetItem only where the server does not return it: emulators).
	now := time.Now()
	claim := store.Claim{Stream: "st", Action: "create", Lease: now.Add(time.Minute), Expires: now.Add(24 * time.Hour)}
	step("Claim", one("PutItem"), func() error {
		c, err := s.Claim(ctx, "u5:alice:k", claim, now)
		if err == nil && !c.Fresh {
			err = errors.New("not fresh")
		}
		return err
	})
	step("Settle", one("UpdateItem"), func() error { return s.Settle(ctx, "u5:alice:k", []byte(`{"reply":1}`)) })
	c.mu.Lock()
	c.oldItem = false
	c.mu.Unlock()
	if err := func() error {
		got, err := s.Claim(ctx, "u5:alice:k", claim, now)
		if err == nil && string(got.Reply) != `{"reply":1}` {
			err = fmt.Errorf("repeat: reply %q", got.Reply)
		}
		return err
	}(); err != nil {
		t.Fatal(err)
	}
	repeat := map[string]int{"PutItem": 1}
	c.mu.Lock()
	if !c.oldItem {
		repeat["GetItem"] = 1
	}
	c.mu.Unlock()
	if got, onWire := c.take(), w.take(); !maps.Equal(got, repeat) || !maps.Equal(onWire, repeat) {
		t.Errorf("Claim repeat: got requests %v (wire %v), want %v", got, onWire, repeat)
	}
	step("Settle nil", one("DeleteItem"), func() error { return s.Settle(ctx, "u5:alice:k", nil) })
	if scans != 0 {
		t.Errorf("%d Scans on the wire, want none", scans)
	}
}

// TestBudget_Scopes checks the requests of scoped and every-scope reads
// and of the subscription calls (RATIONALE: "Why is a scope a partition
// of its own?"): an owner's list page is one Query of exactly the
// owner's partition of the table, with no filter and no Scan; a read of
// every scope is one Query of by_binding, never consistent; a subscriber
// lookup is one Query per topic however many subscribe.
func TestBudget_Scopes(t *testing.T) {
	w := &wire{}
	raw := newClient(t, w)
	tables := newTables(t, raw)
	c := &counting{Client: raw, ops: map[string]int{}}
	s := dynamo.New(dynamo.Config{Client: c, Tables: tables})
	ctx := t.Context()
	w.take()
	step := func(name string, want map[string]int, f func() error) []query {
		t.Helper()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, onWire := c.take(), w.take()
		if !maps.Equal(got, want) || !maps.Equal(onWire, want) {
			t.Errorf("%s: got requests %v (wire %v), want %v", name, got, onWire, want)
		}
		return c.takeQueries()
	}
	one := func(op string) map[string]int { return map[string]int{op: 1} }
	alice := store.Part{Stream: "notes", Scope: "alice"}
	bob := store.Part{Stream: "notes", Scope: "bob"}
	all := store.Part{Stream: "notes", All: true}
	item := func(id string) store.Item {
		return store.Item{ID: id, Data: []byte(`{"id":"` + id + `","text":"hello"}`)}
	}
	for _, id := range []string{"a1", "a2", "a3"} {
		step("Create scoped", one("PutItem"), func() error { return s.Create(ctx, alice, item(id)) })
	}
	// Bob's 300 notes are nothing alice's reads read.
	inParallel(t, 300, func(i int) error { return s.Create(ctx, bob, item(fmt.Sprintf("b%03d", i))) })
	c.take()
	w.take()
	c.takeQueries()

	checkQueries := func(name string, qs []query, index string, scanned int32) {
		t.Helper()
		if len(qs) != 1 {
			t.Fatalf("%s: %d queries, want 1", name, len(qs))
		}
		q := qs[0]
		if q.index != index || q.filter || q.consistent != (index == "") {
			t.Errorf("%s: got %+v, want index %q, no filter, consistent %v", name, q, index, index == "")
		}
		if scanned >= 0 && q.scanned != scanned {
			t.Errorf("%s: read %d items, want %d", name, q.scanned, scanned)
		}
	}
	qs := step("List scoped", one("Query"), func() error {
		items, err := s.List(ctx, alice, "", 0, 25)
		if err == nil && len(items) != 3 {
			err = fmt.Errorf("got %d items, want 3", len(items))
		}
		return err
	})
	checkQueries("List scoped", qs, "", 3)
	qs = step("List scoped page 2", one("Query"), func() error {
		items, err := s.List(ctx, bob, "", 25, 25)
		if err == nil && (len(items) != 25 || items[0].ID != "b025") {
			err = fmt.Errorf("got %d items, want 25 from b025", len(items))
		}
		return err
	})
	checkQueries("List scoped page 2", qs, "", 50)
	qs = step("Count scoped", one("Query"), func() error {
		n, err := s.Count(ctx, alice)
		if err == nil && n != 3 {
			err = fmt.Errorf("got %d, want 3", n)
		}
		return err
	})
	checkQueries("Count scoped", qs, "", 3)
	step("Get scoped", one("GetItem"), func() error { _, err := s.Get(ctx, alice, "a1"); return err })
	step("Get of another scope's id", one("GetItem"), func() error {
		if _, err := s.Get(ctx, alice, "b001"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("got %v, want ErrNotFound", err)
		}
		return nil
	})
	qs = step("Get all", one("Query"), func() error {
		it, err := s.Get(ctx, all, "b001")
		if err == nil && it.Scope != "bob" {
			err = fmt.Errorf("got scope %q, want bob", it.Scope)
		}
		return err
	})
	checkQueries("Get all", qs, dynamo.IndexByBinding, 1)
	qs = step("List all", one("Query"), func() error {
		items, err := s.List(ctx, all, "", 0, 10)
		if err == nil && (len(items) != 10 || items[0].Scope != "alice" || items[9].Scope != "bob") {
			err = fmt.Errorf("got %+v, want a1-a3 then b000-b006", items)
		}
		return err
	})
	// One item more than the page: does the page end inside a run of one
	// id in several scopes?
	checkQueries("List all", qs, dynamo.IndexByBinding, 11)
	// Keyset pages: the key condition starts the Query past the id, so
	// it reads only the page (and, of every scope, the item after it).
	qs = step("List scoped after", one("Query"), func() error {
		items, err := s.List(ctx, bob, "b249", 0, 25)
		if err == nil && (len(items) != 25 || items[0].ID != "b250") {
			err = fmt.Errorf("got %d items, want 25 from b250", len(items))
		}
		return err
	})
	checkQueries("List scoped after", qs, "", 25)
	qs = step("List scoped after, the last page", one("Query"), func() error {
		items, err := s.List(ctx, bob, "b289", 0, 25)
		if err == nil && (len(items) != 10 || items[0].ID != "b290") {
			err = fmt.Errorf("got %d items, want 10 from b290", len(items))
		}
		return err
	})
	checkQueries("List scoped after, the last page", qs, "", 10)
	qs = step("List all after", one("Query"), func() error {
		items, err := s.List(ctx, all, "b199", 0, 25)
		if err == nil && (len(items) != 25 || items[0].ID != "b200") {
			err = fmt.Errorf("got %d items, want 25 from b200", len(items))
		}
		return err
	})
	checkQueries("List all after", qs, dynamo.IndexByBinding, 26)
	qs = step("Count all", one("Query"), func() error {
		n, err := s.Count(ctx, all)
		if err == nil && n != 303 {
			err = fmt.Errorf("got %d, want 303", n)
		}
		return err
	})
	checkQueries("Count all", qs, dynamo.IndexByBinding, 303)
	step("Replace scoped", one("PutItem"), func() error {
		_, err := s.Replace(ctx, alice, store.Item{ID: "a1", Version: 1, Data: item("a1").Data})
		return err
	})
	step("Delete scoped at its version", one("DeleteItem"), func() error { _, err := s.Delete(ctx, alice, "a1", 2); return err })
	// A versioned delete that conflicts: one write, and one read only
	// when the server does not return the stored item.
	c.oldItem = false
	if _, err := s.Delete(ctx, alice, "a2", 5); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Delete conflict: got %v, want ErrConflict", err)
	}
	want := map[string]int{"DeleteItem": 1}
	if !c.oldItem {
		want["GetItem"] = 1
	}
	if got, onWire := c.take(), w.take(); !maps.Equal(got, want) || !maps.Equal(onWire, want) {
		t.Errorf("Delete conflict: got %v (wire %v), want %v", got, onWire, want)
	}
	for _, name := range []string{"Create", "Replace", "Delete"} {
		step(name+" all", map[string]int{}, func() error {
			var err error
			switch name {
			case "Create":
				err = s.Create(ctx, all, item("z"))
			case "Replace":
				_, err = s.Replace(ctx, all, store.Item{ID: "a2", Version: 1, Data: item("a2").Data})
			default:
				_, err = s.Delete(ctx, all, "a2", store.AnyVersion)
			}
			if !errors.Is(err, dynamo.ErrInvalid) {
				return fmt.Errorf("got %v, want ErrInvalid", err)
			}
			return nil
		})
	}

	// Subscriptions: one topic of 1 subscriber, one of 500, one of none.
	few, many, none := "notes#update#a2", "notes#update", "notes#delete"
	step("PutConn", one("PutItem"), func() error { return s.PutConn(ctx, store.Conn{ConnID: "c0"}) })
	step("Subscribe", map[string]int{"PutItem": 1, "GetItem": 1}, func() error {
		return s.Subscribe(ctx, store.Subscription{Topic: few, ConnID: "c0", Filter: `{"done":true}`})
	})
	inParallel(t, 500, func(i int) error {
		sub := store.Subscription{Topic: many, ConnID: fmt.Sprintf("c%03d", i),
			User: identity.User{ID: fmt.Sprint("u", i), Roles: []string{"staff"}, Claims: map[string]string{"email": "someone@example.com"}}}
		if err := s.PutConn(ctx, store.Conn{ConnID: sub.ConnID}); err != nil {
			return err
		}
		return s.Subscribe(ctx, sub)
	})
	c.take()
	w.take()
	c.takeQueries()
	for _, tc := range []struct {
		topics []string
		subs   int
	}{{[]string{few}, 1}, {[]string{many}, 500}, {[]string{none}, 0}, {[]string{few, many, none}, 501}, {[]string{many, few, many}, 501}} {
		name := fmt.Sprintf("Subscribers of %q", tc.topics)
		distinct := slices.Compact(slices.Sorted(slices.Values(tc.topics)))
		qs := step(name, map[string]int{"Query": len(distinct)}, func() error {
			subs, err := s.Subscribers(ctx, tc.topics)
			if err == nil && len(subs) != tc.subs {
				err = fmt.Errorf("got %d subscribers, want %d", len(subs), tc.subs)
			}
			return err
		})
		for _, q := range qs {
			if q.index != "" || q.filter || !q.consistent {
				t.Errorf("%s: query %+v, want the table's, no filter, consistent", name, q)
			}
		}
	}
	step("Unsubscribe", one("DeleteItem"), func() error {
		return s.Unsubscribe(ctx, store.Subscription{Topic: few, ConnID: "c0", Filter: `{"done":true}`})
	})
	step("Unsubscribe of an impossible key", map[string]int{}, func() error {
		return s.Unsubscribe(ctx, store.Subscription{Topic: few, ConnID: "c0", Filter: strings.Repeat("x", 1024)})
	})
	step("Subscribe with an impossible key", map[string]int{}, func() error {
		err := s.Subscribe(ctx, store.Subscription{Topic: few, ConnID: "c0", Filter: strings.Repeat("x", 1024)})
		if !errors.Is(err, dynamo.ErrInvalid) {
			return fmt.Errorf("got %v, want ErrInvalid", err)
		}
		return nil
	})
	// The history: one BatchWriteItem per 25 changes, one Query to replay.
	changes := make([]store.Change, 30)
	for i := range changes {
		changes[i] = store.Change{Stream: "budget", PK: fmt.Sprintf("h%02d", i), Kind: store.KindUpdate, Version: 2, At: 1_900_000_000_000 + int64(i),
			Old: []byte(`{"id":"h","text":"before"}`), New: []byte(`{"id":"h","text":"after"}`)}
	}
	step("Record 30 changes", map[string]int{"BatchWriteItem": 2}, func() error { return s.Record(ctx, changes) })
	step("Since, one part", one("Query"), func() error {
		got, err := s.Since(ctx, store.Part{Stream: "budget"}, 0, 100)
		if err == nil && len(got) != 30 {
			err = fmt.Errorf("got %d changes, want 30", len(got))
		}
		return err
	})
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
	sub := store.Subscription{Topic: "st#create", ConnID: "c1"}
	if err := s.PutConn(ctx, store.Conn{ConnID: "c1", At: now.UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(ctx, sub); err != nil {
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
	if subs, err := s.Subscribers(ctx, []string{sub.Topic}); err != nil || len(subs) != 1 {
		t.Errorf("Subscribers before expiry: got %v, %v", subs, err)
	}
	if _, ok, err := s.Conn(ctx, "c1"); !ok || err != nil {
		t.Errorf("Conn before expiry: got %v, %v", ok, err)
	}
	set(now.Add(dynamo.Lifetime))
	if subs, err := s.Subscribers(ctx, []string{sub.Topic}); err != nil || len(subs) != 0 {
		t.Errorf("Subscribers after expiry: got %v, %v, want none", subs, err)
	}
	if _, ok, err := s.Conn(ctx, "c1"); ok || err != nil {
		t.Errorf("Conn after expiry: got %v, %v, want none", ok, err)
	}
	// Expired among live ones, as DynamoDB keeps them for days.
	if err := s.PutConn(ctx, store.Conn{ConnID: "c2", At: now.Add(dynamo.Lifetime).UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(ctx, store.Subscription{Topic: sub.Topic, ConnID: "c2"}); err != nil {
		t.Fatal(err)
	}
	if subs, err := s.Subscribers(ctx, []string{sub.Topic}); err != nil || len(subs) != 1 || subs[0].ConnID != "c2" {
		t.Errorf("Subscribers: got %v, %v, want c2 alone", subs, err)
	}
	// A subscribe of a connection whose record expired (and is still
	// stored, as DynamoDB deletes late) takes itself back: the connection
	// is gone as far as the store knows.
	if err := s.Subscribe(ctx, store.Subscription{Topic: "st#update", ConnID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if out, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &tables.Subscriptions, ConsistentRead: aws.Bool(true), Key: map[string]types.AttributeValue{
		"topic": &types.AttributeValueMemberS{Value: "st#update"}, "sub": &types.AttributeValueMemberS{Value: "c1"}}}); err != nil || len(out.Item) != 0 {
		t.Errorf("subscription of an expired connection: got %v, %v, want no record", out.Item, err)
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
			err := s.Create(t.Context(), store.Part{Stream: "st"}, store.Item{ID: "x", Data: []byte(tc.data)})
			if tc.want == nil { // a repeated member counts once
				if err != nil {
					t.Fatalf("got %v, want it stored", err)
				}
				if _, err := s.Delete(t.Context(), store.Part{Stream: "st"}, "x", store.AnyVersion); err != nil {
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
			if _, err := s.Replace(t.Context(), store.Part{Stream: "st"}, store.Item{ID: "x", Version: 1, Data: []byte(tc.data)}); !errors.Is(err, tc.want) {
				t.Errorf("Replace: got %v, want %v", err, tc.want)
			}
		})
	}
	// Keys: an id or stream DynamoDB cannot key on is never found, and
	// cannot be created.
	long := strings.Repeat("k", 1025)
	if err := s.Create(t.Context(), store.Part{Stream: "st"}, store.Item{ID: long, Data: []byte(`{}`)}); !errors.Is(err, dynamo.ErrInvalid) {
		t.Errorf("Create with a 1025-byte id: got %v, want ErrInvalid", err)
	}
	if err := s.Create(t.Context(), store.Part{Stream: "st"}, store.Item{ID: "", Data: []byte(`{}`)}); !errors.Is(err, dynamo.ErrInvalid) {
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
	it, err := s.Get(ctx, store.Part{Stream: "st"}, "o1")
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
	if v, err := s.Replace(ctx, store.Part{Stream: "st"}, store.Item{ID: "o1", Version: 0, Data: []byte(`{"id":"o1"}`)}); err != nil || v != 1 {
		t.Fatalf("Replace at version 0: got %d, %v, want 1", v, err)
	}
	if _, err := s.Replace(ctx, store.Part{Stream: "st"}, store.Item{ID: "o1", Version: 0, Data: []byte(`{"id":"o1"}`)}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second Replace at version 0: got %v, want ErrConflict", err)
	}
	if _, err := s.Replace(ctx, store.Part{Stream: "st"}, store.Item{ID: "o9", Version: 0, Data: []byte(`{"id":"o9"}`)}); !errors.Is(err, store.ErrNotFound) {
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
		if err := s.PutConn(ctx, store.Conn{ConnID: conn}); err != nil {
			t.Fatal(err)
		}
		for i := range 30 {
			if err := s.Subscribe(ctx, store.Subscription{Topic: fmt.Sprint("st#update#", i), ConnID: conn}); err != nil {
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
			subs, err := s.Subscribers(ctx, []string{fmt.Sprint("st#update#", i)})
			if err != nil || slices.ContainsFunc(subs, func(s store.Subscription) bool { return s.ConnID == conn }) {
				t.Fatalf("topic %d after DropConn: %v, %v", i, subs, err)
			}
		}
	}
}

// fakeQueries answers each topic's Query with one subscription after a
// pause, fails the topics in fail, and records how many queries were in
// flight at most. It needs no endpoint.
type fakeQueries struct {
	dynamo.Client
	fail              map[string]bool
	mu                sync.Mutex
	inFlight, maxSeen int
}

func (f *fakeQueries) Query(ctx context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	topic := in.ExpressionAttributeValues[":t"].(*types.AttributeValueMemberS).Value
	f.mu.Lock()
	f.inFlight++
	f.maxSeen = max(f.maxSeen, f.inFlight)
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.inFlight--; f.mu.Unlock() }()
	select {
	case <-time.After(5 * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.fail[topic] {
		return nil, errors.New("throttled: " + topic)
	}
	return &dynamodb.QueryOutput{Items: []map[string]types.AttributeValue{{
		"topic": &types.AttributeValueMemberS{Value: topic}, "sub": &types.AttributeValueMemberS{Value: "c"},
		"conn_id": &types.AttributeValueMemberS{Value: "c"},
	}}}, nil
}

// TestSubscribers_Concurrent checks the topic queries' bound, the order
// of the result, and that a failed query fails the call with its cause.
func TestSubscribers_Concurrent(t *testing.T) {
	f := &fakeQueries{}
	s := dynamo.New(dynamo.Config{Client: f, Tables: dynamo.Tables{Subscriptions: "subs"}})
	var topics []string
	for i := range 30 {
		topics = append(topics, fmt.Sprintf("st#update#%02d", 29-i))
	}
	subs, err := s.Subscribers(t.Context(), append(topics, topics[3], topics[0]))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(subs))
	for i, sub := range subs {
		got[i] = sub.Topic
	}
	if !slices.Equal(got, topics) {
		t.Errorf("topics of the result: got %q, want %q", got, topics)
	}
	if f.maxSeen < 2 || f.maxSeen > 8 {
		t.Errorf("queries in flight: at most %d, want 2 to 8", f.maxSeen)
	}
	f.fail = map[string]bool{topics[17]: true}
	subs, err = s.Subscribers(t.Context(), topics)
	if err == nil || !strings.Contains(err.Error(), "throttled: "+topics[17]) || subs != nil {
		t.Errorf("with a failing query: got %d subscriptions, %v, want the query's error", len(subs), err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Subscribers(ctx, topics); !errors.Is(err, context.Canceled) {
		t.Errorf("with the context ended: got %v, want context.Canceled", err)
	}
}

// interleaving runs hooks around a Subscribe's requests, to put a
// disconnect's requests between them, and can stand in for a by_conn
// index that lags (its queries find nothing) or a failing read.
type interleaving struct {
	dynamo.Client
	subs                string // the subscriptions table
	beforePut, afterPut func() // run once, around the next PutItem to subs
	getErr              error  // GetItem fails with it
	lagging             bool   // queries of by_conn find nothing
	ops                 []string
}

func (c *interleaving) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.ops = append(c.ops, "PutItem "+aws.ToString(in.TableName))
	if aws.ToString(in.TableName) != c.subs {
		return c.Client.PutItem(ctx, in, o...)
	}
	if f := c.beforePut; f != nil {
		c.beforePut = nil
		f()
	}
	out, err := c.Client.PutItem(ctx, in, o...)
	if f := c.afterPut; f != nil {
		c.afterPut = nil
		f()
	}
	return out, err
}

func (c *interleaving) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.ops = append(c.ops, "GetItem "+aws.ToString(in.TableName))
	if c.getErr != nil {
		return nil, c.getErr
	}
	return c.Client.GetItem(ctx, in, o...)
}

func (c *interleaving) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c.ops = append(c.ops, "DeleteItem "+aws.ToString(in.TableName))
	return c.Client.DeleteItem(ctx, in, o...)
}

func (c *interleaving) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if c.lagging && aws.ToString(in.IndexName) == dynamo.IndexByConn {
		return &dynamodb.QueryOutput{}, nil
	}
	return c.Client.Query(ctx, in, o...)
}

// TestSubscribe_Disconnected puts a disconnect's DropConn at each point
// of a Subscribe of the same connection (the gateway serves a
// connection's messages concurrently with its $disconnect), with a
// by_conn index that has not caught up where that matters: whatever the
// order, no subscription remains, and the Subscribe is not an error.
func TestSubscribe_Disconnected(t *testing.T) {
	raw := newClient(t, nil)
	tables := newTables(t, raw)
	ctx := t.Context()
	record := func(t *testing.T, conn, topic string) map[string]types.AttributeValue {
		t.Helper()
		out, err := raw.GetItem(ctx, &dynamodb.GetItemInput{TableName: &tables.Subscriptions, ConsistentRead: aws.Bool(true), Key: map[string]types.AttributeValue{
			"topic": &types.AttributeValueMemberS{Value: topic}, "sub": &types.AttributeValueMemberS{Value: conn}}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Item
	}
	for _, tc := range []struct {
		name string
		// when: before or after the Subscribe's PutItem; lagging: the
		// DropConn's query does not see the subscription.
		after, lagging bool
		want           []string // the Subscribe's requests
	}{
		// The probe's order: DropConn done before the write lands.
		{name: "drop before the write", want: []string{"PutItem subs", "GetItem conns", "DeleteItem subs"}},
		// DropConn between the write and the read, its index behind.
		{name: "drop between write and read, index behind", after: true, lagging: true, want: []string{"PutItem subs", "GetItem conns", "DeleteItem subs"}},
		// Between them, the index caught up: both delete it.
		{name: "drop between write and read", after: true, want: []string{"PutItem subs", "GetItem conns", "DeleteItem subs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := fmt.Sprintf("c-%x", rand.Uint64())
			topic := "st#update"
			s := dynamo.New(dynamo.Config{Client: raw, Tables: tables})
			if err := s.PutConn(ctx, store.Conn{ConnID: conn}); err != nil {
				t.Fatal(err)
			}
			disconnect := dynamo.New(dynamo.Config{Client: &interleaving{Client: raw, lagging: tc.lagging}, Tables: tables})
			c := &interleaving{Client: raw, subs: tables.Subscriptions}
			drop := func() {
				if err := disconnect.DropConn(ctx, conn); err != nil {
					t.Errorf("DropConn: %v", err)
				}
			}
			if tc.after {
				c.afterPut = drop
			} else {
				c.beforePut = drop
			}
			sub := dynamo.New(dynamo.Config{Client: c, Tables: tables})
			if err := sub.Subscribe(ctx, store.Subscription{Topic: topic, ConnID: conn}); err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			got := strings.NewReplacer(tables.Subscriptions, "subs", tables.Connections, "conns").Replace(strings.Join(c.ops, ","))
			if want := strings.Join(tc.want, ","); got != want {
				t.Errorf("requests: got %s, want %s", got, want)
			}
			if item := record(t, conn, topic); len(item) != 0 {
				t.Errorf("subscription after the disconnect: %v, want none", item)
			}
		})
	}
	t.Run("connection never recorded", func(t *testing.T) {
		s := dynamo.New(dynamo.Config{Client: raw, Tables: tables})
		if err := s.Subscribe(ctx, store.Subscription{Topic: "st#create", ConnID: "never"}); err != nil {
			t.Fatal(err)
		}
		if item := record(t, "never", "st#create"); len(item) != 0 {
			t.Errorf("subscription of an unknown connection: %v, want none", item)
		}
	})
	t.Run("read fails", func(t *testing.T) {
		conn := "live"
		s := dynamo.New(dynamo.Config{Client: raw, Tables: tables})
		if err := s.PutConn(ctx, store.Conn{ConnID: conn}); err != nil {
			t.Fatal(err)
		}
		c := &interleaving{Client: raw, subs: tables.Subscriptions, getErr: errors.New("throttled")}
		err := dynamo.New(dynamo.Config{Client: c, Tables: tables}).Subscribe(ctx, store.Subscription{Topic: "st#create", ConnID: conn})
		if err == nil || !strings.Contains(err.Error(), "throttled") {
			t.Errorf("Subscribe with a failing read: got %v, want the read's error", err)
		}
		if item := record(t, conn, "st#create"); len(item) != 0 {
			t.Errorf("subscription after a failed subscribe: %v, want none", item)
		}
	})
}

// inParallel runs fn(0) to fn(n-1) concurrently and fails t with every
// error they return.
func inParallel(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := fn(i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}
