// Package storetest is the conformance suite every backend passes: the
// item store (unscoped and scoped, and the read of every scope),
// subscriptions and connections, with the edges that differ between an
// in-memory map and DynamoDB (conditional writes under races, 1 MB query
// pages, number precision, unicode, item size).
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Backend { return memory.New() })
//	}
package storetest

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsbind/wsbind/internal/core/identity"
	"github.com/wsbind/wsbind/internal/core/jsonv"
	"github.com/wsbind/wsbind/internal/core/store"
)

// Backend is everything the host needs from a database: the binding's
// store, the fan-out's subscriber lookup and the connection records.
type Backend interface {
	store.Store
	store.Subscribers
	store.Connections
	store.History
}

// SubscriptionLister is implemented by backends (or their tests'
// wrappers) that can list the subscription records a connection holds
// straight from where they are kept, expired or not. When the backend has
// it, the suite checks that a dropped connection leaves no record at all,
// not only none that Subscribers returns.
type SubscriptionLister interface {
	// ConnSubscriptions returns the stored subscriptions of connID, in
	// any order.
	ConnSubscriptions(ctx context.Context, connID string) ([]store.Subscription, error)
}

// ConnReader is implemented by backends that can read a connection back.
// When the backend has it, the suite checks what PutConn stored.
type ConnReader interface {
	// Conn returns the recorded connection; ok is false when there is none.
	Conn(ctx context.Context, connID string) (e store.Conn, ok bool, err error)
}

// Limits of DynamoDB that a backend may enforce. Writes past them must
// either fail or round-trip exactly; silently losing data is the failure.
const (
	// ItemLimit is DynamoDB's item size, names and keys included.
	ItemLimit = 400 * 1024
	// pageLimit is how much one DynamoDB query page holds.
	pageLimit = 1 << 20
)

// Run runs the suite. newBackend is called once per test; it may return
// the same backend every time, as every test uses its own stream, topic
// and connection names. The item tests run twice: in a stream's unscoped
// part, and again (under "Scoped/") in one scope of a stream.
//
// A backend may refuse (record nothing of, without an error) the
// subscriptions of a connection PutConn did not record, as the connect
// function records every connection before its first message; the suite
// records each connection before it subscribes. A subscription of a
// connection that DropConn forgot, even one racing the DropConn, must
// not remain.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	itemTests := []struct {
		name string
		fn   func(*testing.T, Backend, names)
	}{
		{"Get_Missing", testGetMissing},
		{"Create_Get", testCreateGet},
		{"Create_Exists", testCreateExists},
		{"Create_Race", testCreateRace},
		{"Replace", testReplace},
		{"Replace_Race", testReplaceRace},
		{"Delete", testDelete},
		{"Delete_Version", testDeleteVersion},
		{"Delete_Race", testDeleteRace},
		{"List_Empty", testListEmpty},
		{"List_Pages", testListPages},
		{"List_ByteOrder", testListByteOrder},
		{"List_PastOneMegabyte", testListPastOneMegabyte},
		{"List_After", testListAfter},
		{"Numbers", testNumbers},
		{"Numbers_OutOfRange", testNumbersOutOfRange},
		{"Unicode", testUnicode},
		{"Values", testValues},
		{"Item_Large", testItemLarge},
	}
	otherTests := []struct {
		name string
		fn   func(*testing.T, Backend, names)
	}{
		{"Scope_Isolation", testScopeIsolation},
		{"Scope_All", testScopeAll},
		{"Scope_AllAfter", testScopeAllAfter},
		{"Scope_AllPastOneMegabyte", testScopeAllPastOneMegabyte},
		{"Scope_WriteAll", testScopeWriteAll},
		{"Subscribe", testSubscribe},
		{"Subscribe_Filters", testSubscribeFilters},
		{"Unsubscribe", testUnsubscribe},
		{"Subscribers_Many", testSubscribersMany},
		{"Subscribers_Topics", testSubscribersTopics},
		{"Subscribers_Roles", testSubscribersRoles},
		{"DropConn", testDropConn},
		{"DropConn_ThenSubscribe", testDropConnThenSubscribe},
		{"DropConn_Race", testDropConnRace},
		{"Connections", testConnections},
		{"Claim", testClaim},
		{"Claim_Race", testClaimRace},
		{"History", testHistory},
	}
	for _, tc := range itemTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newBackend(t), newNames(""))
		})
	}
	t.Run("Scoped", func(t *testing.T) {
		for _, tc := range itemTests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				// A scope with the separator, unicode and a space in it.
				tc.fn(t, newBackend(t), newNames("owner#1 \u00e9"))
			})
		}
	})
	for _, tc := range otherTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newBackend(t), newNames(""))
		})
	}
}

// names makes the stream, topic and connection names of one test unique,
// so that tests can share a backend and runs can share tables. scope is
// the scope of the item tests' Parts, "" for none.
type names struct{ id, scope string }

func newNames(scope string) names {
	var b [6]byte
	for i := range b {
		b[i] = byte(rand.N(256))
	}
	return names{id: hex.EncodeToString(b[:]), scope: scope}
}

func (n names) stream(s string) string { return "s" + n.id + s }
func (n names) conn(s string) string   { return "c" + n.id + s }

// part is the Part of the item tests: stream s, in the test's scope.
func (n names) part(s string) store.Part {
	return store.Part{Stream: n.stream(s), Scope: n.scope}
}

// object builds a stored object: id first, then members given as key and
// raw JSON value pairs.
func object(id string, kv ...string) []byte {
	b := []byte(`{"id":`)
	b = jsonv.AppendString(b, id)
	for i := 0; i < len(kv); i += 2 {
		b = append(b, ',')
		b = jsonv.AppendString(b, kv[i])
		b = append(b, ':')
		b = append(b, kv[i+1]...)
	}
	return append(b, '}')
}

func quote(s string) string { return string(jsonv.AppendString(nil, s)) }

// sameJSON reports how got differs from want as JSON values: objects as
// unordered members, numbers by exact decimal value, strings exactly.
func sameJSON(got, want []byte) error {
	if bytes.Equal(got, want) {
		return nil
	}
	g, err := decode(got)
	if err != nil {
		return fmt.Errorf("got %.200q: %v", got, err)
	}
	w, err := decode(want)
	if err != nil {
		return fmt.Errorf("want %.200q: %v", want, err)
	}
	return sameValue("$", g, w)
}

func decode(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("data after the value")
	}
	return v, nil
}

func sameValue(path string, g, w any) error {
	switch w := w.(type) {
	case map[string]any:
		g, ok := g.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: got %T, want an object", path, g)
		}
		for _, k := range slices.Sorted(maps.Keys(w)) {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("%s: member %q missing", path, k)
			}
			if err := sameValue(path+"."+strconv.Quote(k), gv, w[k]); err != nil {
				return err
			}
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				return fmt.Errorf("%s: extra member %q", path, k)
			}
		}
		return nil
	case []any:
		g, ok := g.([]any)
		if !ok {
			return fmt.Errorf("%s: got %T, want an array", path, g)
		}
		if len(g) != len(w) {
			return fmt.Errorf("%s: got %d elements, want %d", path, len(g), len(w))
		}
		for i := range w {
			if err := sameValue(fmt.Sprintf("%s[%d]", path, i), g[i], w[i]); err != nil {
				return err
			}
		}
		return nil
	case json.Number:
		g, ok := g.(json.Number)
		if !ok {
			return fmt.Errorf("%s: got %T, want the number %s", path, g, w)
		}
		if g == w {
			return nil // and no big.Rat of 1e999999999999
		}
		gr, ok1 := new(big.Rat).SetString(string(g))
		wr, ok2 := new(big.Rat).SetString(string(w))
		if !ok1 || !ok2 || gr.Cmp(wr) != 0 {
			return fmt.Errorf("%s: got the number %s, want %s", path, g, w)
		}
		return nil
	case string:
		if g != w {
			gs, _ := g.(string)
			return fmt.Errorf("%s: got %.80q, want %.80q", path, gs, w)
		}
		return nil
	}
	if g != w {
		return fmt.Errorf("%s: got %v, want %v", path, g, w)
	}
	return nil
}

func ctx(t *testing.T) context.Context { return t.Context() }

// mustCreate creates an item and fails the test if it cannot.
func mustCreate(t *testing.T, b Backend, p store.Part, id string, data []byte) {
	t.Helper()
	if err := b.Create(ctx(t), p, store.Item{ID: id, Data: data}); err != nil {
		t.Fatalf("Create(%+v, %.40q): %v", p, id, err)
	}
}

// checkItem gets an item and compares it with what was written: its id,
// version and data, and its scope, which is p's.
func checkItem(t *testing.T, b Backend, p store.Part, id string, version int64, data []byte) {
	t.Helper()
	it, err := b.Get(ctx(t), p, id)
	if err != nil {
		t.Fatalf("Get(%+v, %.40q): %v", p, id, err)
	}
	if it.ID != id || it.Version != version || it.Scope != p.Scope {
		t.Errorf("Get(%.40q): got id %.40q version %d scope %q, want version %d scope %q", id, it.ID, it.Version, it.Scope, version, p.Scope)
	}
	if err := sameJSON(it.Data, data); err != nil {
		t.Errorf("Get(%.40q): data: %v", id, err)
	}
}

func testGetMissing(t *testing.T, b Backend, n names) {
	s := n.part("")
	mustCreate(t, b, s, "present", object("present"))
	for _, id := range []string{"absent", "", "presen", "present ", strings.Repeat("x", 2000)} {
		if _, err := b.Get(ctx(t), s, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%.20q): got %v, want ErrNotFound", id, err)
		}
		if _, err := b.Delete(ctx(t), s, id, store.AnyVersion); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Delete(%.20q): got %v, want ErrNotFound", id, err)
		}
		if _, err := b.Replace(ctx(t), s, store.Item{ID: id, Version: 1, Data: object(id)}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Replace(%.20q): got %v, want ErrNotFound", id, err)
		}
	}
	if _, err := b.Get(ctx(t), n.part("other"), "present"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get from another stream: got %v, want ErrNotFound", err)
	}
}

func testCreateGet(t *testing.T, b Backend, n names) {
	s := n.part("")
	data := object("a1", "text", `"hello"`, "n", "42", "ok", "true")
	in := slices.Clone(data)
	if err := b.Create(ctx(t), s, store.Item{ID: "a1", Version: 7, Data: in}); err != nil {
		t.Fatal(err)
	}
	copy(in, bytes.Repeat([]byte{' '}, len(in))) // the store must not keep the caller's bytes
	checkItem(t, b, s, "a1", 1, data)
	got, _ := b.Get(ctx(t), s, "a1")
	clear(got.Data) // nor hand out its own
	checkItem(t, b, s, "a1", 1, data)
}

func testCreateExists(t *testing.T, b Backend, n names) {
	s := n.part("")
	first := object("dup", "v", `"first"`)
	mustCreate(t, b, s, "dup", first)
	err := b.Create(ctx(t), s, store.Item{ID: "dup", Data: object("dup", "v", `"second"`)})
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("second Create: got %v, want ErrExists", err)
	}
	checkItem(t, b, s, "dup", 1, first)
	// The same id in another stream is another item.
	mustCreate(t, b, n.part("2"), "dup", object("dup", "v", `"other"`))
	checkItem(t, b, s, "dup", 1, first)
	if c, err := b.Count(ctx(t), s); err != nil || c != 1 {
		t.Errorf("Count: got %d, %v, want 1", c, err)
	}
}

// race runs f on every goroutine at once and returns the errors.
func race(workers int, f func(i int) error) []error {
	errs := make([]error, workers)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range workers {
		done.Go(func() {
			start.Wait()
			errs[i] = f(i)
		})
	}
	start.Done()
	done.Wait()
	return errs
}

func testCreateRace(t *testing.T, b Backend, n names) {
	s := n.part("")
	const workers = 8
	errs := race(workers, func(i int) error {
		return b.Create(ctx(t), s, store.Item{ID: "x", Data: object("x", "w", strconv.Itoa(i))})
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both created the item", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrExists):
			t.Errorf("writer %d: got %v, want ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer created the item")
	}
	checkItem(t, b, s, "x", 1, object("x", "w", strconv.Itoa(winner)))
}

func testReplace(t *testing.T, b Backend, n names) {
	s := n.part("")
	mustCreate(t, b, s, "r", object("r", "v", "1"))
	v, err := b.Replace(ctx(t), s, store.Item{ID: "r", Version: 1, Data: object("r", "v", "2", "added", `"yes"`)})
	if err != nil || v != 2 {
		t.Fatalf("Replace at version 1: got %d, %v, want 2", v, err)
	}
	checkItem(t, b, s, "r", 2, object("r", "v", "2", "added", `"yes"`))
	for _, stale := range []int64{1, 3, 100} {
		_, err := b.Replace(ctx(t), s, store.Item{ID: "r", Version: stale, Data: object("r", "v", `"stale"`)})
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("Replace at version %d of version 2: got %v, want ErrConflict", stale, err)
		}
	}
	// Members not in the new data are gone: a replace is not a merge.
	v, err = b.Replace(ctx(t), s, store.Item{ID: "r", Version: 2, Data: object("r", "v", "3")})
	if err != nil || v != 3 {
		t.Fatalf("Replace at version 2: got %d, %v, want 3", v, err)
	}
	checkItem(t, b, s, "r", 3, object("r", "v", "3"))
}

func testReplaceRace(t *testing.T, b Backend, n names) {
	s := n.part("")
	mustCreate(t, b, s, "x", object("x", "w", "-1"))
	const workers = 8
	for round := int64(1); round <= 3; round++ {
		errs := race(workers, func(i int) error {
			v, err := b.Replace(ctx(t), s, store.Item{ID: "x", Version: round, Data: object("x", "w", strconv.Itoa(i))})
			if err == nil && v != round+1 {
				return fmt.Errorf("new version %d, want %d", v, round+1)
			}
			return err
		})
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("round %d: writers %d and %d both replaced version %d", round, winner, i, round)
			case err == nil:
				winner = i
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("round %d: writer %d: got %v, want ErrConflict", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer won", round)
		}
		checkItem(t, b, s, "x", round+1, object("x", "w", strconv.Itoa(winner)))
	}
}

func testDelete(t *testing.T, b Backend, n names) {
	s := n.part("")
	mustCreate(t, b, s, "d", object("d", "v", "1"))
	mustCreate(t, b, s, "keep", object("keep"))
	if _, err := b.Replace(ctx(t), s, store.Item{ID: "d", Version: 1, Data: object("d", "v", "2")}); err != nil {
		t.Fatal(err)
	}
	old, err := b.Delete(ctx(t), s, "d", store.AnyVersion)
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if old.ID != "d" || old.Version != 2 {
		t.Errorf("Delete: got id %q version %d, want d 2", old.ID, old.Version)
	}
	if err := sameJSON(old.Data, object("d", "v", "2")); err != nil {
		t.Errorf("Delete: old data: %v", err)
	}
	if _, err := b.Get(ctx(t), s, "d"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete: got %v, want ErrNotFound", err)
	}
	if _, err := b.Delete(ctx(t), s, "d", store.AnyVersion); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Delete: got %v, want ErrNotFound", err)
	}
	if _, err := b.Replace(ctx(t), s, store.Item{ID: "d", Version: 2, Data: object("d")}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Replace after Delete: got %v, want ErrNotFound", err)
	}
	if c, err := b.Count(ctx(t), s); err != nil || c != 1 {
		t.Errorf("Count after Delete: got %d, %v, want 1", c, err)
	}
	// A new item under the old id starts again at version 1.
	mustCreate(t, b, s, "d", object("d", "v", `"again"`))
	checkItem(t, b, s, "d", 1, object("d", "v", `"again"`))
}

func testListEmpty(t *testing.T, b Backend, n names) {
	s := n.part("")
	for _, c := range [][2]int{{0, 10}, {0, 1}, {5, 10}, {0, 0}} {
		items, err := b.List(ctx(t), s, "", c[0], c[1])
		if err != nil || len(items) != 0 {
			t.Errorf("List(%d, %d) of an empty stream: got %d items, %v", c[0], c[1], len(items), err)
		}
	}
	if c, err := b.Count(ctx(t), s); err != nil || c != 0 {
		t.Errorf("Count of an empty stream: got %d, %v", c, err)
	}
}

// checkList lists offset and limit and compares with want, the ids the
// page should hold.
func checkList(t *testing.T, b Backend, p store.Part, offset, limit int, want []string, data map[string][]byte) {
	t.Helper()
	checkListAfter(t, b, p, "", offset, limit, want, data)
}

// checkListAfter lists the ids after after, from offset and limit, and
// compares with want, the ids the page should hold.
func checkListAfter(t *testing.T, b Backend, p store.Part, after string, offset, limit int, want []string, data map[string][]byte) {
	t.Helper()
	items, err := b.List(ctx(t), p, after, offset, limit)
	if err != nil {
		t.Fatalf("List(%.40q, %d, %d): %v", after, offset, limit, err)
	}
	got := make([]string, len(items))
	for i, it := range items {
		got[i] = it.ID
		if it.Scope != p.Scope {
			t.Errorf("List(%.40q, %d, %d): item %.40q: scope %q, want %q", after, offset, limit, it.ID, it.Scope, p.Scope)
		}
		if d, ok := data[it.ID]; ok {
			if err := sameJSON(it.Data, d); err != nil {
				t.Errorf("List(%.40q, %d, %d): item %.40q: %v", after, offset, limit, it.ID, err)
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("List(%.40q, %d, %d): got ids %.200q, want %.200q", after, offset, limit, got, want)
	}
}

// testListAfter: keyset pages. A page after an id starts with the first
// id past it, stored or not (deleted, never created); past the end it is
// empty; a walk page by page, each after the last id of the one before,
// lists every item once.
func testListAfter(t *testing.T, b Backend, n names) {
	s := n.part("")
	ids, data := seedIDs(t, b, s, 10)
	// Items of a stream whose name extends this one's, of another scope
	// and of the stream's unscoped part, past every id: none is listed.
	others := []store.Part{{Stream: s.Stream + "x", Scope: s.Scope}}
	if s.Scope != "" {
		others = append(others, store.Part{Stream: s.Stream, Scope: s.Scope + "x"}, store.Part{Stream: s.Stream})
	}
	for _, other := range others {
		mustCreate(t, b, other, "id05x", object("id05x"))
		mustCreate(t, b, other, "zz", object("zz"))
	}
	for i, id := range ids {
		checkListAfter(t, b, s, id, 0, 3, ids[i+1:min(i+4, len(ids))], data)
	}
	checkListAfter(t, b, s, "", 0, 3, ids[:3], data)
	checkListAfter(t, b, s, "a", 0, 2, ids[:2], data)        // before every id
	checkListAfter(t, b, s, "id", 0, 2, ids[:2], data)       // a prefix of every id
	checkListAfter(t, b, s, "id04x", 0, 3, ids[5:8], data)   // between two ids
	checkListAfter(t, b, s, "id02", 2, 3, ids[5:8], data)    // with an offset
	checkListAfter(t, b, s, "id07", 0, 100, ids[8:], data)   // a short page
	checkListAfter(t, b, s, "id09", 0, 5, []string{}, nil)   // the last id
	checkListAfter(t, b, s, "zz", 0, 5, []string{}, nil)     // past the end
	checkListAfter(t, b, s, "id03", 0, 0, []string{}, nil)   // no limit
	checkListAfter(t, b, s, "id03", 100, 5, []string{}, nil) // offset past the end
	checkListAfter(t, b, s, strings.Repeat("a", store.MaxPK), 0, 1, ids[:1], data)
	checkListAfter(t, b, s, strings.Repeat("z", store.MaxPK), 0, 1, []string{}, nil)
	// After a deleted id: the page starts at the next id; the page
	// after the id before the deleted one does not hold it.
	if _, err := b.Delete(ctx(t), s, "id05", store.AnyVersion); err != nil {
		t.Fatal(err)
	}
	left := slices.Delete(slices.Clone(ids), 5, 6)
	checkListAfter(t, b, s, "id05", 0, 2, []string{"id06", "id07"}, data)
	checkListAfter(t, b, s, "id04", 0, 2, []string{"id06", "id07"}, data)
	// A walk by keyset, each page after the last id of the one before.
	for _, size := range []int{1, 3, 9, 10} {
		var got []string
		for after, pages := "", 0; ; pages++ {
			if pages > len(left) {
				t.Fatalf("size %d: no end of pages", size)
			}
			items, err := b.List(ctx(t), s, after, 0, size)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				got = append(got, it.ID)
			}
			if len(items) < size {
				break
			}
			after = items[len(items)-1].ID
		}
		if !slices.Equal(got, left) {
			t.Errorf("walk of pages of %d: got %q, want %q", size, got, left)
		}
	}
}

// seedIDs creates n items in s, ids id00, id01, ..., in random order (the
// order of writing is not the order of listing), and returns the ids in
// order with each one's data.
func seedIDs(t *testing.T, b Backend, s store.Part, n int) ([]string, map[string][]byte) {
	t.Helper()
	ids := make([]string, n)
	data := map[string][]byte{}
	for i := range ids {
		ids[i] = fmt.Sprintf("id%02d", i)
		data[ids[i]] = object(ids[i], "i", strconv.Itoa(i))
	}
	for _, i := range rand.Perm(len(ids)) {
		mustCreate(t, b, s, ids[i], data[ids[i]])
	}
	return ids, data
}

func testListPages(t *testing.T, b Backend, n names) {
	s := n.part("")
	ids, data := seedIDs(t, b, s, 10)
	// Items of a stream whose name extends this one's are not listed.
	longer := store.Part{Stream: s.Stream + "x", Scope: s.Scope}
	mustCreate(t, b, longer, "id00", object("id00"))
	mustCreate(t, b, longer, "id99", object("id99"))
	if s.Scope != "" {
		// Nor items of a scope whose key extends this one's, of another
		// scope, or of the stream's unscoped part.
		for _, other := range []store.Part{{Stream: s.Stream, Scope: s.Scope + "x"}, {Stream: s.Stream, Scope: "a"}, {Stream: s.Stream}} {
			mustCreate(t, b, other, "id00", object("id00"))
			mustCreate(t, b, other, "id05x", object("id05x"))
		}
	}
	if _, err := b.Replace(ctx(t), s, store.Item{ID: "id04", Version: 1, Data: object("id04", "i", `"four"`)}); err != nil {
		t.Fatal(err)
	}
	data["id04"] = object("id04", "i", `"four"`)
	for _, size := range []int{1, 3, 5, 10, 11} {
		for off := 0; off <= len(ids); off += size {
			checkList(t, b, s, off, size, ids[off:min(off+size, len(ids))], data)
		}
	}
	checkList(t, b, s, 10, 5, []string{}, nil)
	checkList(t, b, s, 11, 5, []string{}, nil)
	checkList(t, b, s, 1000, 5, []string{}, nil)
	checkList(t, b, s, 0, 0, []string{}, nil)
	checkList(t, b, s, 9, 100, ids[9:], data)
	checkList(t, b, s, 0, 1<<20, ids, data)
	items, err := b.List(ctx(t), s, "", 4, 1)
	if err != nil || len(items) != 1 || items[0].Version != 2 {
		t.Errorf("List(4, 1): got %+v, %v, want id04 at version 2", items, err)
	}
	if c, err := b.Count(ctx(t), s); err != nil || c != len(ids) {
		t.Errorf("Count: got %d, %v, want %d", c, err, len(ids))
	}
}

func testListByteOrder(t *testing.T, b Backend, n names) {
	s := n.part("")
	// Ids sort by their UTF-8 bytes, as DynamoDB sorts string keys; note
	// U+FFFD before U+1F600, which UTF-16 order would reverse.
	ids := []string{"0", "9", "A", "Z", "_", "a", "z", "~", "\u00e9", "\u0436", "\u4e2d", "\ufffd", "\U0001f600", "\U0001f600a"}
	for _, i := range rand.Perm(len(ids)) {
		mustCreate(t, b, s, ids[i], object(ids[i]))
	}
	want := slices.Sorted(slices.Values(ids))
	checkList(t, b, s, 0, 100, want, nil)
	checkList(t, b, s, 10, 3, want[10:13], nil)
	// A page after an id: the ids past it in the same byte order.
	for i, id := range want {
		checkListAfter(t, b, s, id, 0, 100, want[i+1:], nil)
	}
	checkListAfter(t, b, s, "\u00e9\u00e9", 0, 2, []string{"\u0436", "\u4e2d"}, nil)
}

func testListPastOneMegabyte(t *testing.T, b Backend, n names) {
	s := n.part("")
	// Eight items of 300 KB: a DynamoDB query page holds three of them.
	const count, size = 8, 300 * 1024
	ids := make([]string, count)
	data := map[string][]byte{}
	for i := range ids {
		ids[i] = fmt.Sprintf("big%d", i)
		data[ids[i]] = object(ids[i], "blob", quote(strings.Repeat(string(rune('a'+i)), size)), "i", strconv.Itoa(i))
		mustCreate(t, b, s, ids[i], data[ids[i]])
	}
	if count*size <= 2*pageLimit {
		t.Fatal("items too small to span three query pages")
	}
	checkList(t, b, s, 0, count, ids, data)
	checkList(t, b, s, 0, 100, ids, data)
	checkList(t, b, s, 5, 3, ids[5:], data)
	checkList(t, b, s, 2, 4, ids[2:6], data)
	checkList(t, b, s, 7, 5, ids[7:], data)
	checkList(t, b, s, 8, 5, []string{}, nil)
	checkListAfter(t, b, s, "big1", 0, 5, ids[2:7], data)
	checkListAfter(t, b, s, "big0", 0, 100, ids[1:], data)
	checkListAfter(t, b, s, "big4", 1, 100, ids[6:], data)
	if c, err := b.Count(ctx(t), s); err != nil || c != count {
		t.Errorf("Count: got %d, %v, want %d", c, err, count)
	}
}

// numbers lists numbers DynamoDB holds. The first group reads back as the
// very same text; the others read back with the same value.
var (
	exactNumbers = []string{
		"0", "1", "-1", "42", "-7",
		"12345678901234567890123456789012345678",  // 38 digits, the precision
		"-98765432109876543210987654321098765432", // 38 digits, negative
		"9007199254740993",                        // 2^53+1: float64 would lose it
		"18446744073709551617",                    // past uint64
		"3.1415926535897932384626433832795028841", // 38 digits after the 3
		"0.1", "-0.5", "2.25", "0.000001",
		"123456789012345678901234567890.12345678", // 38 digits either side
		"0.00000000000000000000000000000000000001",
		"100000000000000000000000000000000000000000000", // 1 digit, many zeros
	}
	sameValueNumbers = []string{
		"1.50", "1e2", "1E+2", "-0", "0.0", "1.0e0", "2.5E-3", "1e-130", "-1E-130",
		"9.9999999999999999999999999999999999999e125", "-9.9999999999999999999999999999999999999E+125",
		"12345678901234567890123456789012345678e10", "1.2345678901234567890123456789012345678e-100",
		"0.000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001",
	}
)

func testNumbers(t *testing.T, b Backend, n names) {
	s := n.part("")
	all := append(slices.Clone(exactNumbers), sameValueNumbers...)
	var kv []string
	for i, num := range all {
		kv = append(kv, fmt.Sprintf("n%02d", i), num)
	}
	kv = append(kv, "list", "["+strings.Join(all, ",")+"]")
	kv = append(kv, "map", `{"a":`+exactNumbers[5]+`,"b":{"c":[`+exactNumbers[6]+`]}}`)
	data := object("nums", kv...)
	mustCreate(t, b, s, "nums", data)
	checkItem(t, b, s, "nums", 1, data)
	it, err := b.Get(ctx(t), s, "nums")
	if err != nil {
		t.Fatal(err)
	}
	m, ok := jsonv.ParseObject(it.Data)
	if !ok {
		t.Fatalf("Get: data is not a JSON object: %.200q", it.Data)
	}
	for i, num := range exactNumbers {
		raw, _ := jsonv.Lookup(m, fmt.Sprintf("n%02d", i))
		if string(raw) != num {
			t.Errorf("number %s read back as %s", num, raw)
		}
	}
	// The same numbers through Replace, and again in a list page.
	if _, err := b.Replace(ctx(t), s, store.Item{ID: "nums", Version: 1, Data: data}); err != nil {
		t.Fatal(err)
	}
	checkList(t, b, s, 0, 1, []string{"nums"}, map[string][]byte{"nums": data})
}

func testNumbersOutOfRange(t *testing.T, b Backend, n names) {
	s := n.part("")
	for i, num := range []string{
		"123456789012345678901234567890123456789",  // 39 significant digits
		"1.00000000000000000000000000000000000001", // 39 significant digits
		"1e126", "-1E+126", "1e-131", "-1e-131", "1e999999999999",
	} {
		id := fmt.Sprintf("n%d", i)
		data := object(id, "n", num)
		err := b.Create(ctx(t), s, store.Item{ID: id, Data: data})
		if err != nil {
			if err.Error() == "" || errors.Is(err, store.ErrExists) {
				t.Errorf("Create with %s: got %q, want an error that says why", num, err)
			}
			if _, err := b.Get(ctx(t), s, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get after a failed Create with %s: got %v, want ErrNotFound", num, err)
			}
			continue
		}
		// A backend that takes it must give it back exactly.
		checkItem(t, b, s, id, 1, data)
	}
}

func testUnicode(t *testing.T, b Backend, n names) {
	s := n.part("ストリーム\U0001f30a")
	id := "ключ-\u4e2d-\U0001f600-\u00e9\u0301"
	data := object(id,
		"名前", quote("値 \U0001f389 \U00010348"),
		"emoji\U0001f389", quote("a\x00b"),
		"nul", quote("\x00"),
		"escapes", quote("\"\\/\b\f\n\r\t\u2028\u2029\u007f"),
		"nested", `{"ключ":["\ud83d\ude00","\u0000",{"\ud800\udf48":"x"}]}`,
		"rtl", quote("\u05e9\u05dc\u05d5\u05dd"),
	)
	mustCreate(t, b, s, id, data)
	checkItem(t, b, s, id, 1, data)
	checkList(t, b, s, 0, 10, []string{id}, map[string][]byte{id: data})
	sub := store.Subscription{
		Topic:  store.Topic(s.Stream, "update", id),
		ConnID: n.conn("\U0001f600"),
		User:   identity.User{ID: "usér-\U0001f600", Claims: map[string]string{"rôle": "ädmin \U0001f451", "nul": "a\x00b"}},
	}
	connect(t, b, sub.ConnID)
	if err := b.Subscribe(ctx(t), sub); err != nil {
		t.Fatal(err)
	}
	checkSubscribers(t, b, sub.Topic, []store.Subscription{sub})
}

func testValues(t *testing.T, b Backend, n names) {
	s := n.part("")
	deep := strings.Repeat(`{"d":[`, 15) + `"bottom"` + strings.Repeat(`]}`, 15) // 30 levels
	data := object("v",
		"null", "null", "t", "true", "f", "false",
		"emptyList", "[]", "emptyObject", "{}",
		"mixed", `[1,"two",null,true,{"k":[]},[[]],{}]`,
		"object", `{"b":2,"a":1,"z":{"y":null},"A":"upper"}`,
		"deep", deep,
		"spaces in name", `"v"`,
		"empty", `""`,
		"emptyInside", `{"s":"","l":[""]}`,
	)
	mustCreate(t, b, s, "v", data)
	checkItem(t, b, s, "v", 1, data)
}

func testItemLarge(t *testing.T, b Backend, n names) {
	s := n.part("")
	// Just under the limit, with room for the names and keys.
	near := object("near", "blob", quote(strings.Repeat("x", ItemLimit-200)))
	mustCreate(t, b, s, "near", near)
	checkItem(t, b, s, "near", 1, near)
	version := int64(1)
	replace := func(data []byte) error {
		_, err := b.Replace(ctx(t), s, store.Item{ID: "near", Version: version, Data: data})
		if err == nil {
			version++
		}
		return err
	}
	if err := replace(near); err != nil {
		t.Fatalf("Replace near the limit: %v", err)
	}
	// Multi-byte text counts in bytes: 100 KB of four-byte characters is
	// 400 KB.
	for _, over := range []struct{ id, blob string }{
		{"over", strings.Repeat("x", ItemLimit+1)},
		{"over4", strings.Repeat("\U0001f600", ItemLimit/4+1)},
	} {
		data := object(over.id, "blob", quote(over.blob))
		if err := b.Create(ctx(t), s, store.Item{ID: over.id, Data: data}); err != nil {
			if _, err := b.Get(ctx(t), s, over.id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get after a failed Create of %s: got %v, want ErrNotFound", over.id, err)
			}
		} else {
			checkItem(t, b, s, over.id, 1, data) // taken: then exactly
		}
		bigger := object("near", "blob", quote(over.blob))
		if err := replace(bigger); err != nil {
			checkItem(t, b, s, "near", version, near) // refused: then unchanged
			continue
		}
		checkItem(t, b, s, "near", version, bigger)
		if err := replace(near); err != nil {
			t.Fatal(err)
		}
	}
}

// sameUser compares users: no roles and no claims are the same whether
// nil or empty.
func sameUser(a, b identity.User) bool {
	return a.ID == b.ID && slices.Equal(a.Roles, b.Roles) && len(a.Claims) == len(b.Claims) && maps.Equal(a.Claims, b.Claims)
}

// checkSubscribers looks topics up in one call and compares the result,
// in order, with want.
func checkSubscribers(t *testing.T, b Backend, topic string, want []store.Subscription, more ...string) {
	t.Helper()
	topics := append([]string{topic}, more...)
	got, err := b.Subscribers(ctx(t), topics)
	if err != nil {
		t.Fatalf("Subscribers(%q): %v", topics, err)
	}
	if len(got) != len(want) {
		t.Fatalf("Subscribers(%.200q): got %d, want %d: %+v", topics, len(got), len(want), got)
	}
	for i := range want {
		if got[i].Topic != want[i].Topic || got[i].ConnID != want[i].ConnID || got[i].Filter != want[i].Filter || !sameUser(got[i].User, want[i].User) {
			t.Errorf("Subscribers(%.200q)[%d]: got %+v, want %+v", topics, i, got[i], want[i])
		}
	}
}

// connect records connections, as the connect function does before any
// message of theirs.
func connect(t *testing.T, b Backend, ids ...string) {
	t.Helper()
	errs := race(len(ids), func(i int) error {
		return b.PutConn(ctx(t), store.Conn{ConnID: ids[i], At: time.Now().UnixMilli()})
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("PutConn: %v", err)
	}
}

func testSubscribe(t *testing.T, b Backend, n names) {
	s := n.stream("")
	all := store.Topic(s, "update", "")
	one := store.Topic(s, "update", "1")
	ten := store.Topic(s, "update", "10")
	checkSubscribers(t, b, all, nil)
	alice := identity.User{ID: "alice", Roles: []string{"staff"}, Claims: map[string]string{"scope": "read write", "email": "a@example.com"}}
	bob := identity.User{ID: "bob"}
	subs := []store.Subscription{
		{Topic: all, ConnID: n.conn("c"), User: alice},
		{Topic: all, ConnID: n.conn("a")},
		{Topic: all, ConnID: n.conn("b"), User: bob},
		{Topic: one, ConnID: n.conn("a")},
		{Topic: ten, ConnID: n.conn("b"), User: bob},
	}
	connect(t, b, n.conn("a"), n.conn("b"), n.conn("c"))
	for _, sub := range subs {
		if err := b.Subscribe(ctx(t), sub); err != nil {
			t.Fatal(err)
		}
	}
	// Subscribing again is not an error and not a second subscription;
	// the newest user wins.
	subs[1].User = bob
	if err := b.Subscribe(ctx(t), subs[1]); err != nil {
		t.Fatalf("subscribing twice: %v", err)
	}
	checkSubscribers(t, b, all, []store.Subscription{subs[1], subs[2], subs[0]})
	checkSubscribers(t, b, one, []store.Subscription{subs[3]})
	checkSubscribers(t, b, ten, []store.Subscription{subs[4]})
	checkSubscribers(t, b, store.Topic(s, "delete", ""), nil)
	checkSubscribers(t, b, store.Topic(s, "update", "100"), nil)
}

func testSubscribersMany(t *testing.T, b Backend, n names) {
	topic := store.Topic(n.stream(""), "create", "")
	var want []store.Subscription
	for i := range 60 {
		sub := store.Subscription{Topic: topic, ConnID: n.conn(fmt.Sprintf("%03d", i)), User: identity.User{ID: fmt.Sprint("u", i)}}
		want = append(want, sub)
		connect(t, b, sub.ConnID)
	}
	errs := race(len(want), func(i int) error { return b.Subscribe(ctx(t), want[i]) })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	checkSubscribers(t, b, topic, want)
}

func testDropConn(t *testing.T, b Backend, n names) {
	s := n.stream("")
	gone, stays := n.conn("gone"), n.conn("stays")
	for _, c := range []string{gone, stays} {
		if err := b.PutConn(ctx(t), store.Conn{ConnID: c, At: time.Now().UnixMilli()}); err != nil {
			t.Fatal(err)
		}
	}
	// 60 topics for the connection that goes: three batches of deletes.
	topics := make([]string, 60)
	for i := range topics {
		topics[i] = store.Topic(s, "update", strconv.Itoa(i))
		if err := b.Subscribe(ctx(t), store.Subscription{Topic: topics[i], ConnID: gone}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := b.Subscribe(ctx(t), store.Subscription{Topic: topics[i], ConnID: stays}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A connection whose id extends the one that goes keeps its own.
	longer := gone + "x"
	connect(t, b, longer)
	if err := b.Subscribe(ctx(t), store.Subscription{Topic: topics[1], ConnID: longer}); err != nil {
		t.Fatal(err)
	}
	if err := b.DropConn(ctx(t), gone); err != nil {
		t.Fatalf("DropConn: %v", err)
	}
	for i, topic := range topics {
		var want []store.Subscription
		if i%2 == 0 {
			want = append(want, store.Subscription{Topic: topic, ConnID: stays})
		}
		if i == 1 {
			want = append(want, store.Subscription{Topic: topic, ConnID: longer})
		}
		checkSubscribers(t, b, topic, want)
	}
	if r, ok := b.(ConnReader); ok {
		if _, ok, err := r.Conn(ctx(t), gone); ok || err != nil {
			t.Errorf("Conn after DropConn: got %v, %v, want none", ok, err)
		}
		if _, ok, err := r.Conn(ctx(t), stays); !ok || err != nil {
			t.Errorf("Conn of the other connection: got %v, %v, want it", ok, err)
		}
	}
	// Dropping again, or a connection never seen, is not an error.
	if err := b.DropConn(ctx(t), gone); err != nil {
		t.Errorf("second DropConn: %v", err)
	}
	if err := b.DropConn(ctx(t), n.conn("never")); err != nil {
		t.Errorf("DropConn of an unknown connection: %v", err)
	}
}

func testConnections(t *testing.T, b Backend, n names) {
	e := store.Conn{
		ConnID: n.conn("1"),
		User:   identity.User{ID: "alice", Claims: map[string]string{"scope": "admin"}},
		At:     time.Now().UnixMilli(),
	}
	anon := store.Conn{ConnID: n.conn("2"), At: e.At + 1}
	for _, ev := range []store.Conn{e, anon} {
		if err := b.PutConn(ctx(t), ev); err != nil {
			t.Fatalf("PutConn(%s): %v", ev.ConnID, err)
		}
	}
	r, ok := b.(ConnReader)
	if !ok {
		return
	}
	check := func(want store.Conn) {
		t.Helper()
		got, ok, err := r.Conn(ctx(t), want.ConnID)
		if !ok || err != nil || got.ConnID != want.ConnID || got.At != want.At || !sameUser(got.User, want.User) {
			t.Errorf("Conn(%s): got %+v, %v, %v, want %+v", want.ConnID, got, ok, err, want)
		}
	}
	check(e)
	check(anon)
	// A reconnect under the same id replaces the record.
	e.User = identity.User{ID: "bob"}
	e.At++
	if err := b.PutConn(ctx(t), e); err != nil {
		t.Fatal(err)
	}
	check(e)
	if _, ok, err := r.Conn(ctx(t), n.conn("none")); ok || err != nil {
		t.Errorf("Conn of an unknown connection: got %v, %v", ok, err)
	}
}

// checkMissing checks that id is not found in p: not read, not replaced,
// not deleted.
func checkMissing(t *testing.T, b Backend, p store.Part, id string) {
	t.Helper()
	if it, err := b.Get(ctx(t), p, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(%+v, %q): got %+v, %v, want ErrNotFound", p, id, it, err)
	}
	if p.All {
		return
	}
	if _, err := b.Replace(ctx(t), p, store.Item{ID: id, Version: 1, Data: object(id)}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Replace(%+v, %q): got %v, want ErrNotFound", p, id, err)
	}
	for _, v := range []int64{store.AnyVersion, 1} {
		if _, err := b.Delete(ctx(t), p, id, v); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Delete(%+v, %q, %d): got %v, want ErrNotFound", p, id, v, err)
		}
	}
}

func testDeleteVersion(t *testing.T, b Backend, n names) {
	s := n.part("")
	mustCreate(t, b, s, "d", object("d", "v", "1"))
	if _, err := b.Replace(ctx(t), s, store.Item{ID: "d", Version: 1, Data: object("d", "v", "2")}); err != nil {
		t.Fatal(err)
	}
	for _, stale := range []int64{0, 1, 3} {
		if _, err := b.Delete(ctx(t), s, "d", stale); !errors.Is(err, store.ErrConflict) {
			t.Errorf("Delete at version %d of version 2: got %v, want ErrConflict", stale, err)
		}
	}
	checkItem(t, b, s, "d", 2, object("d", "v", "2"))
	old, err := b.Delete(ctx(t), s, "d", 2)
	if err != nil {
		t.Fatalf("Delete at version 2: %v", err)
	}
	if old.ID != "d" || old.Version != 2 || old.Scope != s.Scope {
		t.Errorf("Delete: got id %q version %d scope %q, want d 2 %q", old.ID, old.Version, old.Scope, s.Scope)
	}
	if err := sameJSON(old.Data, object("d", "v", "2")); err != nil {
		t.Errorf("Delete: old data: %v", err)
	}
	for _, v := range []int64{2, store.AnyVersion} {
		if _, err := b.Delete(ctx(t), s, "d", v); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Delete at version %d of a deleted item: got %v, want ErrNotFound", v, err)
		}
	}
}

func testDeleteRace(t *testing.T, b Backend, n names) {
	s := n.part("")
	mustCreate(t, b, s, "x", object("x"))
	const workers = 8
	// Half delete at version 1, half replace it: exactly one wins.
	errs := race(workers, func(i int) error {
		if i%2 == 0 {
			_, err := b.Delete(ctx(t), s, "x", 1)
			return err
		}
		_, err := b.Replace(ctx(t), s, store.Item{ID: "x", Version: 1, Data: object("x", "w", strconv.Itoa(i))})
		return err
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both wrote version 1", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound):
			t.Errorf("writer %d: got %v, want ErrConflict or ErrNotFound", i, err)
		}
	}
	switch {
	case winner < 0:
		t.Fatal("no writer won")
	case winner%2 == 0:
		checkMissing(t, b, s, "x")
	default:
		checkItem(t, b, s, "x", 2, object("x", "w", strconv.Itoa(winner)))
	}
}

func testScopeIsolation(t *testing.T, b Backend, n names) {
	st := n.stream("")
	alice := store.Part{Stream: st, Scope: "alice"}
	bob := store.Part{Stream: st, Scope: "bob"}
	all := store.Part{Stream: st, All: true}
	mustCreate(t, b, alice, "x", object("x", "owner", `"alice"`))
	mustCreate(t, b, bob, "y", object("y", "owner", `"bob"`))
	// Neither finds, lists, counts, changes or deletes the other's.
	checkMissing(t, b, bob, "x")
	checkMissing(t, b, alice, "y")
	checkMissing(t, b, store.Part{Stream: st}, "x")
	checkMissing(t, b, store.Part{Stream: st, Scope: "alic"}, "x")
	checkMissing(t, b, store.Part{Stream: st, Scope: "alicex"}, "x")
	checkList(t, b, alice, 0, 10, []string{"x"}, nil)
	checkList(t, b, bob, 0, 10, []string{"y"}, nil)
	checkList(t, b, store.Part{Stream: st}, 0, 10, []string{}, nil)
	for p, want := range map[store.Part]int{alice: 1, bob: 1, {Stream: st}: 0, {Stream: st, Scope: "carol"}: 0, all: 2} {
		if c, err := b.Count(ctx(t), p); err != nil || c != want {
			t.Errorf("Count(%+v): got %d, %v, want %d", p, c, err, want)
		}
	}
	checkItem(t, b, alice, "x", 1, object("x", "owner", `"alice"`))
	// Every scope: found, with its scope, which writes then name.
	it, err := b.Get(ctx(t), all, "x")
	if err != nil || it.ID != "x" || it.Scope != "alice" || it.Version != 1 {
		t.Fatalf("Get(all, x): got %+v, %v, want x in scope alice", it, err)
	}
	if err := sameJSON(it.Data, object("x", "owner", `"alice"`)); err != nil {
		t.Errorf("Get(all, x): %v", err)
	}
	checkMissing(t, b, all, "z")
	checkMissing(t, b, store.Part{Stream: n.stream("other"), All: true}, "x")
	if _, err := b.Replace(ctx(t), store.Part{Stream: st, Scope: it.Scope}, store.Item{ID: "x", Scope: it.Scope, Version: it.Version, Data: object("x", "owner", `"alice"`, "n", "2")}); err != nil {
		t.Fatalf("Replace in the scope Get(all) gave: %v", err)
	}
	checkItem(t, b, alice, "x", 2, object("x", "owner", `"alice"`, "n", "2"))
	// The same id in another scope is another item.
	mustCreate(t, b, bob, "x", object("x", "owner", `"bob"`))
	checkItem(t, b, alice, "x", 2, object("x", "owner", `"alice"`, "n", "2"))
	checkItem(t, b, bob, "x", 1, object("x", "owner", `"bob"`))
	if _, err := b.Delete(ctx(t), bob, "x", store.AnyVersion); err != nil {
		t.Fatal(err)
	}
	checkItem(t, b, alice, "x", 2, object("x", "owner", `"alice"`, "n", "2"))
	// Items of the stream's unscoped part are no scope's: every scope
	// does not reach them.
	mustCreate(t, b, store.Part{Stream: st}, "u", object("u"))
	checkMissing(t, b, all, "u")
	checkMissing(t, b, alice, "u")
	if c, err := b.Count(ctx(t), all); err != nil || c != 2 {
		t.Errorf("Count(all) with an unscoped item: got %d, %v, want 2", c, err)
	}
}

func testScopeAll(t *testing.T, b Backend, n names) {
	st := n.stream("")
	all := store.Part{Stream: st, All: true}
	checkList(t, b, all, 0, 10, []string{}, nil)
	if c, err := b.Count(ctx(t), all); err != nil || c != 0 {
		t.Errorf("Count(all) of an empty stream: got %d, %v", c, err)
	}
	// Ids interleave across scopes; every scope lists them in id order.
	scopes := map[string]string{"a1": "carol", "b2": "alice", "c3": "bob", "d4": "alice", "e5": "ü#x", "f6": "bob", "g7": "carol"}
	ids := slices.Sorted(maps.Keys(scopes))
	data := map[string][]byte{}
	for _, i := range rand.Perm(len(ids)) {
		id := ids[i]
		data[id] = object(id, "owner", quote(scopes[id]))
		mustCreate(t, b, store.Part{Stream: st, Scope: scopes[id]}, id, data[id])
	}
	// Another stream's items, in the same scopes, are not listed.
	mustCreate(t, b, store.Part{Stream: n.stream("x"), Scope: "alice"}, "a0", object("a0"))
	mustCreate(t, b, store.Part{Stream: n.stream("x"), Scope: "alice"}, "z9", object("z9"))
	list := func(offset, limit int, want []string) {
		t.Helper()
		items, err := b.List(ctx(t), all, "", offset, limit)
		if err != nil {
			t.Fatalf("List(all, %d, %d): %v", offset, limit, err)
		}
		got := make([]string, len(items))
		for i, it := range items {
			got[i] = it.ID
			if it.Scope != scopes[it.ID] || it.Version != 1 {
				t.Errorf("List(all, %d, %d): %s: scope %q version %d, want %q 1", offset, limit, it.ID, it.Scope, it.Version, scopes[it.ID])
			}
			if err := sameJSON(it.Data, data[it.ID]); err != nil {
				t.Errorf("List(all, %d, %d): %s: %v", offset, limit, it.ID, err)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("List(all, %d, %d): got %q, want %q", offset, limit, got, want)
		}
	}
	for _, size := range []int{1, 3, 7, 8} {
		for off := 0; off <= len(ids); off += size {
			list(off, size, ids[off:min(off+size, len(ids))])
		}
	}
	list(100, 5, []string{})
	list(0, 0, []string{})
	if c, err := b.Count(ctx(t), all); err != nil || c != len(ids) {
		t.Errorf("Count(all): got %d, %v, want %d", c, err, len(ids))
	}
	for _, id := range ids {
		it, err := b.Get(ctx(t), all, id)
		if err != nil || it.Scope != scopes[id] {
			t.Errorf("Get(all, %s): got %+v, %v, want scope %q", id, it, err, scopes[id])
		}
	}
}

// testScopeAllAfter: keyset pages of every scope, where one id may be
// held by several scopes. Items come in id then scope order; a page
// never ends inside a run of one id (it runs on past its limit to the
// run's end), so that the page after that id misses none of the run; a
// walk page by page lists every item once.
func testScopeAllAfter(t *testing.T, b Backend, n names) {
	st := n.stream("")
	all := store.Part{Stream: st, All: true}
	type key struct{ id, scope string }
	keys := []key{
		{"a1", "carol"},
		{"b2", "alice"}, {"b2", "bob"}, {"b2", "carol"},
		{"c3", "bob"},
		{"d4", "alice"}, {"d4", "\u00fc#x"},
		{"e5", "bob"},
		{"f6", "alice"}, {"f6", "bob"},
	}
	data := map[key][]byte{}
	for _, i := range rand.Perm(len(keys)) {
		k := keys[i]
		data[k] = object(k.id, "owner", quote(k.scope))
		mustCreate(t, b, store.Part{Stream: st, Scope: k.scope}, k.id, data[k])
	}
	// The stream's unscoped part and another stream are not reached.
	mustCreate(t, b, store.Part{Stream: st}, "c3", object("c3"))
	mustCreate(t, b, store.Part{Stream: n.stream("x"), Scope: "alice"}, "c3", object("c3"))
	list := func(after string, offset, limit int) []key {
		t.Helper()
		items, err := b.List(ctx(t), all, after, offset, limit)
		if err != nil {
			t.Fatalf("List(all, %q, %d, %d): %v", after, offset, limit, err)
		}
		got := make([]key, len(items))
		for i, it := range items {
			got[i] = key{it.ID, it.Scope}
			if err := sameJSON(it.Data, data[got[i]]); err != nil || it.Version != 1 {
				t.Errorf("List(all, %q, %d, %d): %v: version %d, %v", after, offset, limit, got[i], it.Version, err)
			}
		}
		return got
	}
	check := func(after string, offset, limit int, want []key) {
		t.Helper()
		if got := list(after, offset, limit); !slices.Equal(got, want) {
			t.Errorf("List(all, %q, %d, %d): got %v, want %v", after, offset, limit, got, want)
		}
	}
	check("", 0, 100, keys)
	check("", 0, 2, keys[:4])     // runs on to the end of b2's run
	check("", 0, 4, keys[:4])     // ends with the run
	check("a1", 0, 1, keys[1:4])  // a run longer than the limit
	check("b2", 0, 2, keys[4:7])  // after a run: none of it
	check("b", 0, 3, keys[1:4])   // before a run: all of it
	check("c3", 0, 3, keys[5:8])  //
	check("e5", 0, 1, keys[8:10]) // the last run
	check("f6", 0, 5, []key{})    // past the end
	check("zz", 0, 5, []key{})    //
	check("a1", 3, 2, keys[4:7])  // an offset from a run's end
	// After an id whose item was deleted: the next id.
	if _, err := b.Delete(ctx(t), store.Part{Stream: st, Scope: "bob"}, "c3", store.AnyVersion); err != nil {
		t.Fatal(err)
	}
	left := slices.Delete(slices.Clone(keys), 4, 5)
	check("c3", 0, 1, left[4:6])
	// Walks by keyset: every item once, in order, no page ending inside
	// a run, none longer than its limit but by the rest of a run.
	for size := 1; size <= len(left)+1; size++ {
		var got []key
		for after, pages := "", 0; ; pages++ {
			if pages > len(left) {
				t.Fatalf("size %d: no end of pages", size)
			}
			page := list(after, 0, size)
			got = append(got, page...)
			if len(page) < size {
				break
			}
			last := page[len(page)-1]
			if i := len(got); i < len(left) && left[i].id == last.id {
				t.Errorf("size %d: a page ends inside the run of %s: %v", size, last.id, page)
			}
			if k := page[size-1]; k.id != last.id {
				t.Errorf("size %d: page %v runs past %d items beyond the run of %s", size, page, size, k.id)
			}
			after = last.id
		}
		if !slices.Equal(got, left) {
			t.Errorf("walk of pages of %d: got %v, want %v", size, got, left)
		}
	}
}

func testScopeAllPastOneMegabyte(t *testing.T, b Backend, n names) {
	st := n.stream("")
	all := store.Part{Stream: st, All: true}
	// Eight items of 300 KB in four scopes: a query page holds three.
	const count, size = 8, 300 * 1024
	ids := make([]string, count)
	for i := range ids {
		ids[i] = fmt.Sprintf("big%d", i)
		data := object(ids[i], "blob", quote(strings.Repeat(string(rune('a'+i)), size)))
		mustCreate(t, b, store.Part{Stream: st, Scope: fmt.Sprint("owner", i%4)}, ids[i], data)
	}
	for _, c := range [][2]int{{0, count}, {0, 100}, {5, 3}, {2, 4}, {7, 5}} {
		items, err := b.List(ctx(t), all, "", c[0], c[1])
		if err != nil {
			t.Fatalf("List(all, %d, %d): %v", c[0], c[1], err)
		}
		got := make([]string, len(items))
		for i, it := range items {
			got[i] = it.ID
		}
		if want := ids[c[0]:min(c[0]+c[1], count)]; !slices.Equal(got, want) {
			t.Errorf("List(all, %d, %d): got %q, want %q", c[0], c[1], got, want)
		}
	}
	if c, err := b.Count(ctx(t), all); err != nil || c != count {
		t.Errorf("Count(all): got %d, %v, want %d", c, err, count)
	}
}

func testScopeWriteAll(t *testing.T, b Backend, n names) {
	st := n.stream("")
	all := store.Part{Stream: st, All: true}
	alice := store.Part{Stream: st, Scope: "alice"}
	mustCreate(t, b, alice, "x", object("x"))
	isOutcome := func(err error) bool {
		return err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrConflict)
	}
	if err := b.Create(ctx(t), all, store.Item{ID: "y", Scope: "alice", Data: object("y")}); isOutcome(err) {
		t.Errorf("Create in every scope: got %v, want a failure", err)
	}
	if _, err := b.Replace(ctx(t), all, store.Item{ID: "x", Scope: "alice", Version: 1, Data: object("x", "n", "1")}); isOutcome(err) {
		t.Errorf("Replace in every scope: got %v, want a failure", err)
	}
	for _, v := range []int64{store.AnyVersion, 1} {
		if _, err := b.Delete(ctx(t), all, "x", v); isOutcome(err) {
			t.Errorf("Delete(%d) in every scope: got %v, want a failure", v, err)
		}
	}
	checkItem(t, b, alice, "x", 1, object("x"))
	checkMissing(t, b, alice, "y")
	if c, err := b.Count(ctx(t), all); err != nil || c != 1 {
		t.Errorf("Count(all): got %d, %v, want 1", c, err)
	}
}

func testSubscribeFilters(t *testing.T, b Backend, n names) {
	topic := store.Topic(n.stream(""), "update", "")
	c1, c2 := n.conn("1"), n.conn("2")
	alice := identity.User{ID: "alice", Roles: []string{"staff"}}
	// One connection, one topic, three filters: three subscriptions, in
	// the order of connection id, then "#" and the filter.
	subs := []store.Subscription{
		{Topic: topic, ConnID: c1},
		{Topic: topic, ConnID: c1, Filter: `{"published":false}`, User: alice},
		{Topic: topic, ConnID: c1, Filter: `{"published":true}`},
		{Topic: topic, ConnID: c2, Filter: `{"published":true}`, User: alice},
	}
	connect(t, b, c1, c2, n.conn("3"))
	for _, i := range rand.Perm(len(subs)) {
		if err := b.Subscribe(ctx(t), subs[i]); err != nil {
			t.Fatal(err)
		}
	}
	checkSubscribers(t, b, topic, subs)
	// Subscribing again with the same filter replaces the one record.
	subs[2].User = alice
	if err := b.Subscribe(ctx(t), subs[2]); err != nil {
		t.Fatal(err)
	}
	checkSubscribers(t, b, topic, subs)
	// A filter as long as a key can be: stored exactly, or refused.
	long := store.Subscription{Topic: topic, ConnID: n.conn("3"), Filter: `{"t":"` + strings.Repeat("é", 600) + `"}`}
	if err := b.Subscribe(ctx(t), long); err != nil {
		checkSubscribers(t, b, topic, subs)
	} else {
		checkSubscribers(t, b, topic, append(slices.Clone(subs), long))
		if err := b.Unsubscribe(ctx(t), long); err != nil {
			t.Fatal(err)
		}
	}
	// Dropping the connection drops every filter of it.
	if err := b.DropConn(ctx(t), c1); err != nil {
		t.Fatal(err)
	}
	checkSubscribers(t, b, topic, subs[3:])
}

func testUnsubscribe(t *testing.T, b Backend, n names) {
	topic, other := store.Topic(n.stream(""), "update", ""), store.Topic(n.stream(""), "update", "pk")
	c1, c2 := n.conn("1"), n.conn("2")
	f1, f2 := `{"a":1}`, `{"a":2}`
	subs := []store.Subscription{
		{Topic: topic, ConnID: c1},
		{Topic: topic, ConnID: c1, Filter: f1},
		{Topic: topic, ConnID: c1, Filter: f2},
		{Topic: topic, ConnID: c2, Filter: f1},
		{Topic: other, ConnID: c1, Filter: f1},
	}
	connect(t, b, c1, c2)
	for _, sub := range subs {
		if err := b.Subscribe(ctx(t), sub); err != nil {
			t.Fatal(err)
		}
	}
	// Exactly the one of that topic, connection and filter goes; the
	// user given does not matter.
	if err := b.Unsubscribe(ctx(t), store.Subscription{Topic: topic, ConnID: c1, Filter: f1, User: identity.User{ID: "someone"}}); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	checkSubscribers(t, b, topic, []store.Subscription{subs[0], subs[2], subs[3]})
	checkSubscribers(t, b, other, subs[4:])
	// The unfiltered one is one subscription like the others.
	if err := b.Unsubscribe(ctx(t), store.Subscription{Topic: topic, ConnID: c1}); err != nil {
		t.Fatalf("Unsubscribe without a filter: %v", err)
	}
	checkSubscribers(t, b, topic, []store.Subscription{subs[2], subs[3]})
	// Removing what is not there is not an error, and removes nothing.
	for _, gone := range []store.Subscription{
		{Topic: topic, ConnID: c1, Filter: f1},
		{Topic: topic, ConnID: c1},
		{Topic: topic, ConnID: n.conn("never")},
		{Topic: topic, ConnID: c1, Filter: `{"a":3}`},
		{Topic: store.Topic(n.stream(""), "delete", ""), ConnID: c1, Filter: f2},
		{Topic: topic, ConnID: c1, Filter: `{"t":"` + strings.Repeat("x", 2000) + `"}`},
	} {
		if err := b.Unsubscribe(ctx(t), gone); err != nil {
			t.Errorf("Unsubscribe of %+.80v, not subscribed: %v", gone, err)
		}
	}
	checkSubscribers(t, b, topic, []store.Subscription{subs[2], subs[3]})
	checkSubscribers(t, b, other, subs[4:])
	// Subscribing again after an unsubscribe subscribes.
	if err := b.Subscribe(ctx(t), subs[1]); err != nil {
		t.Fatal(err)
	}
	checkSubscribers(t, b, topic, []store.Subscription{subs[1], subs[2], subs[3]})
}

func testSubscribersTopics(t *testing.T, b Backend, n names) {
	s := n.stream("")
	t1, t2, t3, none := store.Topic(s, "update", ""), store.Topic(s, "update", "1"), store.Topic(s, "delete", ""), store.Topic(s, "create", "")
	var want1, want2, want3 []store.Subscription
	for i := range 12 {
		conn := n.conn(fmt.Sprintf("%02d", 11-i))
		connect(t, b, conn)
		sub := func(topic string) store.Subscription {
			return store.Subscription{Topic: topic, ConnID: conn, User: identity.User{ID: fmt.Sprint("u", i)}}
		}
		want1 = append([]store.Subscription{sub(t1)}, want1...)
		if i%2 == 0 {
			want2 = append([]store.Subscription{sub(t2)}, want2...)
		}
		if i%3 == 0 {
			want3 = append([]store.Subscription{sub(t3)}, want3...)
		}
	}
	all := slices.Concat(want1, want2, want3)
	errs := race(len(all), func(i int) error { return b.Subscribe(ctx(t), all[i]) })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	// In the order of the topics given, each topic's in connection order;
	// a topic without subscribers adds nothing, a repeated one nothing
	// more.
	checkSubscribers(t, b, t2, slices.Concat(want2, want3, want1), t3, none, t1)
	checkSubscribers(t, b, none, slices.Concat(want1, want2), t1, t2, t1, none)
	checkSubscribers(t, b, t3, want3, t3)
	// More topics than a backend may query at once.
	topics := []string{t1}
	want := slices.Clone(want1)
	connect(t, b, n.conn("x"))
	for i := range 20 {
		topic := store.Topic(s, "update", fmt.Sprint("x", i))
		sub := store.Subscription{Topic: topic, ConnID: n.conn("x")}
		if err := b.Subscribe(ctx(t), sub); err != nil {
			t.Fatal(err)
		}
		topics = append(topics, topic, none)
		want = append(want, sub)
	}
	checkSubscribers(t, b, topics[0], append(want, want2...), append(topics[1:], t2)...)
	if got, err := b.Subscribers(ctx(t), nil); err != nil || len(got) != 0 {
		t.Errorf("Subscribers of no topic: got %+v, %v", got, err)
	}
}

func testSubscribersRoles(t *testing.T, b Backend, n names) {
	topic := store.Topic(n.stream(""), "create", "")
	users := []identity.User{
		{ID: "a", Roles: []string{"admin"}},
		{ID: "b", Roles: []string{"z-last", "a-first", "m \U0001f451", ""}},
		{ID: "c", Roles: []string{"staff"}, Claims: map[string]string{"email": "c@example.com"}},
		{ID: "d"},
		{},
	}
	var want []store.Subscription
	for i, u := range users {
		sub := store.Subscription{Topic: topic, ConnID: n.conn(fmt.Sprint(i)), User: u}
		connect(t, b, sub.ConnID)
		if err := b.Subscribe(ctx(t), sub); err != nil {
			t.Fatal(err)
		}
		want = append(want, sub)
	}
	checkSubscribers(t, b, topic, want)
	if r, ok := b.(ConnReader); ok {
		e := store.Conn{ConnID: n.conn("r"), User: users[1], At: time.Now().UnixMilli()}
		if err := b.PutConn(ctx(t), e); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := r.Conn(ctx(t), e.ConnID); !ok || err != nil || !sameUser(got.User, e.User) {
			t.Errorf("Conn: got %+v, %v, %v, want the user %+v", got, ok, err, e.User)
		}
	}
}

// checkNoRecords checks, when the backend can list them, that the
// connections hold no subscription records at all.
func checkNoRecords(t *testing.T, b Backend, conns ...string) {
	t.Helper()
	l, ok := b.(SubscriptionLister)
	if !ok {
		return
	}
	for _, c := range conns {
		subs, err := l.ConnSubscriptions(ctx(t), c)
		if err != nil {
			t.Fatalf("ConnSubscriptions(%s): %v", c, err)
		}
		if len(subs) != 0 {
			t.Errorf("connection %s, dropped, still holds %d subscription records: %+v", c, len(subs), subs)
		}
	}
}

// testDropConnThenSubscribe: a subscribe that comes after its
// connection's DropConn (a message served concurrently with the
// disconnect, and late) is not an error and records nothing, again after
// a second DropConn. A connection recorded again subscribes again.
func testDropConnThenSubscribe(t *testing.T, b Backend, n names) {
	s := n.stream("")
	t1, t2 := store.Topic(s, "update", ""), store.Topic(s, "delete", "1")
	late, other := n.conn("late"), n.conn("other")
	connect(t, b, late, other)
	keep := store.Subscription{Topic: t1, ConnID: other}
	for _, sub := range []store.Subscription{keep, {Topic: t1, ConnID: late}} {
		if err := b.Subscribe(ctx(t), sub); err != nil {
			t.Fatal(err)
		}
	}
	subs := []store.Subscription{
		{Topic: t1, ConnID: late},
		{Topic: t2, ConnID: late, Filter: `{"done":true}`, User: identity.User{ID: "alice", Roles: []string{"staff"}}},
	}
	for round := range 2 {
		if err := b.DropConn(ctx(t), late); err != nil {
			t.Fatalf("DropConn: %v", err)
		}
		for _, sub := range subs {
			if err := b.Subscribe(ctx(t), sub); err != nil {
				t.Errorf("Subscribe of a dropped connection (round %d): got %v, want no error", round, err)
			}
		}
		checkSubscribers(t, b, t1, []store.Subscription{keep}, t2)
		checkNoRecords(t, b, late)
	}
	// A reconnect under the same id (API Gateway never reuses one, but a
	// store must not remember a drop against a new record).
	connect(t, b, late)
	for _, sub := range subs {
		if err := b.Subscribe(ctx(t), sub); err != nil {
			t.Fatal(err)
		}
	}
	checkSubscribers(t, b, t1, []store.Subscription{subs[0], keep})
	checkSubscribers(t, b, t2, subs[1:])
}

// testDropConnRace hammers the race of a connection's subscribes with its
// DropConn: pairs of goroutines, one subscribing a connection to several
// topics (with and without filters) while the other drops it, each pair's
// drop landing at another point of its subscribes. Whatever the order,
// no subscription of a dropped connection remains; another connection's
// stay. (Against DynamoDB itself, the by_conn index's lag may leave one
// written a moment before the drop; the emulators' indexes have none.)
func testDropConnRace(t *testing.T, b Backend, n names) {
	const (
		pairs   = 16
		perConn = 6
		rounds  = 3
	)
	s := n.stream("")
	topics := []string{store.Topic(s, "create", ""), store.Topic(s, "update", ""), store.Topic(s, "update", "7")}
	keeper := n.conn("keeper")
	connect(t, b, keeper)
	var keep []store.Subscription
	var took time.Duration // one subscribe's time, to spread the drops
	for _, topic := range topics {
		sub := store.Subscription{Topic: topic, ConnID: keeper}
		start := time.Now()
		if err := b.Subscribe(ctx(t), sub); err != nil {
			t.Fatal(err)
		}
		took = max(took, time.Since(start))
		keep = append(keep, sub)
	}
	for round := range rounds {
		conns := make([]string, pairs)
		for i := range conns {
			conns[i] = n.conn(fmt.Sprintf("r%d-%02d", round, i))
		}
		connect(t, b, conns...)
		errs := race(2*pairs, func(i int) error {
			conn := conns[i/2]
			if i%2 == 1 {
				time.Sleep(rand.N(took*perConn + 1))
				return b.DropConn(ctx(t), conn)
			}
			for j := range perConn {
				sub := store.Subscription{Topic: topics[j%len(topics)], ConnID: conn}
				if j >= len(topics) {
					sub.Filter = fmt.Sprintf(`{"n":%d}`, j)
				}
				if err := b.Subscribe(ctx(t), sub); err != nil {
					return err
				}
			}
			return nil
		})
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		checkSubscribers(t, b, topics[0], keep, topics[1:]...)
		checkNoRecords(t, b, conns...)
	}
}

// testClaim walks an idempotency key through its life: claimed, in
// progress, settled, expired; freed by a nil reply; taken over after its
// lease.
func testClaim(t *testing.T, b Backend, n names) {
	now := time.Unix(1_800_000_000, 0)
	key := "k" + n.id
	c := store.Claim{Stream: "s", Action: "create", Lease: now.Add(time.Minute), Expires: now.Add(24 * time.Hour)}
	got, err := b.Claim(ctx(t), key, c, now)
	if err != nil || !got.Fresh {
		t.Fatalf("first claim: %+v, %v; want fresh", got, err)
	}
	got, err = b.Claim(ctx(t), key, store.Claim{Stream: "other", Action: "patch", Lease: now.Add(2 * time.Minute), Expires: now.Add(25 * time.Hour)}, now.Add(time.Second))
	if err != nil || got.Fresh || got.Reply != nil || got.Stream != "s" || got.Action != "create" {
		t.Fatalf("claim in progress: %+v, %v; want the first claim's record, no reply", got, err)
	}
	if err := b.Settle(ctx(t), key, []byte("reply-1")); err != nil {
		t.Fatal(err)
	}
	// Long past the lease, within the lifetime: the reply.
	got, err = b.Claim(ctx(t), key, c, now.Add(time.Hour))
	if err != nil || got.Fresh || string(got.Reply) != "reply-1" || got.Stream != "s" || got.Action != "create" {
		t.Fatalf("claim settled: %+v, %v; want reply-1", got, err)
	}
	if !got.Expires.Equal(c.Expires) {
		t.Errorf("expires %v, want %v", got.Expires, c.Expires)
	}
	// Past the lifetime the key is free, whether or not it was deleted.
	later := now.Add(24*time.Hour + time.Second)
	got, err = b.Claim(ctx(t), key, store.Claim{Stream: "s2", Action: "delete", Lease: later.Add(time.Minute), Expires: later.Add(24 * time.Hour)}, later)
	if err != nil || !got.Fresh {
		t.Fatalf("claim after expiry: %+v, %v; want fresh", got, err)
	}
	// A nil reply frees it at once.
	if err := b.Settle(ctx(t), key, nil); err != nil {
		t.Fatal(err)
	}
	c = store.Claim{Stream: "s", Action: "create", Lease: later.Add(time.Minute), Expires: later.Add(24 * time.Hour)}
	if got, err = b.Claim(ctx(t), key, c, later); err != nil || !got.Fresh {
		t.Fatalf("claim after release: %+v, %v; want fresh", got, err)
	}
	// A claim whose lease ended with no reply is taken over.
	if got, err = b.Claim(ctx(t), key, c, later.Add(30*time.Second)); err != nil || got.Fresh {
		t.Fatalf("claim within lease: %+v, %v; want taken", got, err)
	}
	c.Lease = c.Lease.Add(time.Minute)
	if got, err = b.Claim(ctx(t), key, c, later.Add(time.Minute+time.Millisecond)); err != nil || !got.Fresh {
		t.Fatalf("claim after lease: %+v, %v; want fresh", got, err)
	}
}

// testClaimRace claims one key from many goroutines at once: exactly one
// is fresh.
func testClaimRace(t *testing.T, b Backend, n names) {
	now := time.Now()
	var fresh atomic.Int32
	errs := race(16, func(int) error {
		got, err := b.Claim(ctx(t), "race"+n.id, store.Claim{Stream: "s", Action: "create", Lease: now.Add(time.Minute), Expires: now.Add(time.Hour)}, now)
		if got.Fresh {
			fresh.Add(1)
		}
		return err
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if k := fresh.Load(); k != 1 {
		t.Errorf("%d of 16 concurrent claims were fresh, want 1", k)
	}
}

// testHistory: the history returns what was recorded, by part and from a
// position on, oldest first, images and versions intact; every scope of
// a stream with All; no more than the limit.
func testHistory(t *testing.T, b Backend, n names) {
	stream := n.stream("h")
	base := int64(1_900_000_000_000)
	mk := func(scope, pk, kind string, at, version int64) store.Change {
		ch := store.Change{Stream: stream, Scope: scope, PK: pk, Kind: kind, At: at, Version: version}
		if kind != store.KindCreate {
			ch.Old = object(pk, "v", strconv.FormatInt(version-1, 10))
		}
		if kind != store.KindDelete {
			ch.New = object(pk, "v", strconv.FormatInt(version, 10))
		}
		return ch
	}
	recorded := []store.Change{
		mk("", "u1", store.KindCreate, base, 1),
		mk("", "u1", store.KindUpdate, base+10, 2),
		mk("", "u2", store.KindCreate, base+12, 1),
		mk("", "u1", store.KindDelete, base+20, 3),
		mk("alice", "a1", store.KindCreate, base+5, 1),
		mk("bob", "b1", store.KindCreate, base+15, 1),
	}
	// Out of order, as two fan-out batches may record them.
	if err := b.Record(ctx(t), recorded[3:]); err != nil {
		t.Fatal(err)
	}
	if err := b.Record(ctx(t), recorded[:3]); err != nil {
		t.Fatal(err)
	}
	ids := func(chs []store.Change) string {
		var out []string
		for _, ch := range chs {
			out = append(out, ch.Scope+"/"+ch.PK+"@"+strconv.FormatInt(ch.Version, 10))
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		name  string
		part  store.Part
		from  int64
		limit int
		want  string
	}{
		{"unscoped, all", store.Part{Stream: stream}, 0, 100, "/u1@1 /u1@2 /u2@1 /u1@3"},
		{"unscoped, from a position", store.Part{Stream: stream}, base + 10, 100, "/u1@2 /u2@1 /u1@3"},
		{"unscoped, limited", store.Part{Stream: stream}, 0, 2, "/u1@1 /u1@2"},
		{"one scope", store.Part{Stream: stream, Scope: "alice"}, 0, 100, "alice/a1@1"},
		{"every scope", store.Part{Stream: stream, All: true}, 0, 100, "alice/a1@1 bob/b1@1"},
		{"nothing after", store.Part{Stream: stream}, base + 21, 100, ""},
	} {
		got, err := b.Since(ctx(t), tc.part, tc.from, tc.limit)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if ids(got) != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, ids(got), tc.want)
		}
	}
	// One object's changes taken in the same millisecond (one fan-out
	// batch) come back in version order, whatever order they were
	// recorded in: 9 before 10, as numbers.
	same := n.stream("hv")
	var batch []store.Change
	for _, v := range []int64{10, 9, 2, 11} {
		ch := mk("", "v1", store.KindUpdate, base+40, v)
		ch.Stream = same
		batch = append(batch, ch)
	}
	if err := b.Record(ctx(t), batch); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Since(ctx(t), store.Part{Stream: same}, base+40, 100); err != nil || ids(got) != "/v1@2 /v1@9 /v1@10 /v1@11" {
		t.Errorf("one object's changes in one millisecond: got %q, %v, want versions 2 9 10 11", ids(got), err)
	}

	got, err := b.Since(ctx(t), store.Part{Stream: stream}, 0, 100)
	if err != nil || len(got) != 4 {
		t.Fatalf("history: %v, %v", got, err)
	}
	for i, want := range []store.Change{recorded[0], recorded[1], recorded[2], recorded[3]} {
		g := got[i]
		if g.Kind != want.Kind || g.At != want.At || g.Stream != stream || sameJSON(g.Old, want.Old) != nil && want.Old != nil ||
			sameJSON(g.New, want.New) != nil && want.New != nil || (want.Old == nil) != (g.Old == nil) || (want.New == nil) != (g.New == nil) {
			t.Errorf("change %d: got %+v, want %+v", i, g, want)
		}
	}
}
