// Package backendtest is the conformance suite every backend passes: the
// item store, subscriptions and connections, with the edges that differ
// between an in-memory map and DynamoDB (conditional writes under races,
// 1 MB query pages, number precision, unicode, item size).
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) backendtest.Backend { return memory.New() })
//	}
package backendtest

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
	"testing"
	"time"

	"github.com/wsbind/wsbind/internal/abi"
	"github.com/wsbind/wsbind/internal/host"
	"github.com/wsbind/wsbind/internal/jsonw"
	"github.com/wsbind/wsbind/internal/router"
	"github.com/wsbind/wsbind/resource"
)

// Backend is everything the host needs from a database: the binding's
// store, the fan-out's subscriber lookup and the connection records.
type Backend interface {
	resource.Store
	router.Subscribers
	host.Connections
}

// ConnReader is implemented by backends that can read a connection back.
// When the backend has it, the suite checks what PutConn stored.
type ConnReader interface {
	// Conn returns the recorded connection; ok is false when there is none.
	Conn(ctx context.Context, connID string) (e abi.ConnEvent, ok bool, err error)
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
// and connection names.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	tests := []struct {
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
		{"List_Empty", testListEmpty},
		{"List_Pages", testListPages},
		{"List_ByteOrder", testListByteOrder},
		{"List_PastOneMegabyte", testListPastOneMegabyte},
		{"Numbers", testNumbers},
		{"Numbers_OutOfRange", testNumbersOutOfRange},
		{"Unicode", testUnicode},
		{"Values", testValues},
		{"Item_Large", testItemLarge},
		{"Subscribe", testSubscribe},
		{"Subscribers_Many", testSubscribersMany},
		{"DropConn", testDropConn},
		{"Connections", testConnections},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newBackend(t), newNames())
		})
	}
}

// names makes the stream, topic and connection names of one test unique,
// so that tests can share a backend and runs can share tables.
type names string

func newNames() names {
	var b [6]byte
	for i := range b {
		b[i] = byte(rand.N(256))
	}
	return names(hex.EncodeToString(b[:]))
}

func (n names) stream(s string) string { return "s" + string(n) + s }
func (n names) conn(s string) string   { return "c" + string(n) + s }

// object builds a stored object: id first, then members given as key and
// raw JSON value pairs.
func object(id string, kv ...string) []byte {
	b := []byte(`{"id":`)
	b = jsonw.AppendString(b, id)
	for i := 0; i < len(kv); i += 2 {
		b = append(b, ',')
		b = jsonw.AppendString(b, kv[i])
		b = append(b, ':')
		b = append(b, kv[i+1]...)
	}
	return append(b, '}')
}

func quote(s string) string { return string(jsonw.AppendString(nil, s)) }

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
func mustCreate(t *testing.T, b Backend, stream, id string, data []byte) {
	t.Helper()
	if err := b.Create(ctx(t), stream, resource.Item{ID: id, Data: data}); err != nil {
		t.Fatalf("Create(%q, %.40q): %v", stream, id, err)
	}
}

// checkItem gets an item and compares it with what was written.
func checkItem(t *testing.T, b Backend, stream, id string, version int64, data []byte) {
	t.Helper()
	it, err := b.Get(ctx(t), stream, id)
	if err != nil {
		t.Fatalf("Get(%.40q): %v", id, err)
	}
	if it.ID != id || it.Version != version {
		t.Errorf("Get(%.40q): got id %.40q version %d, want version %d", id, it.ID, it.Version, version)
	}
	if err := sameJSON(it.Data, data); err != nil {
		t.Errorf("Get(%.40q): data: %v", id, err)
	}
}

func testGetMissing(t *testing.T, b Backend, n names) {
	s := n.stream("")
	mustCreate(t, b, s, "present", object("present"))
	for _, id := range []string{"absent", "", "presen", "present ", strings.Repeat("x", 2000)} {
		if _, err := b.Get(ctx(t), s, id); !errors.Is(err, resource.ErrNotFound) {
			t.Errorf("Get(%.20q): got %v, want ErrNotFound", id, err)
		}
		if _, err := b.Delete(ctx(t), s, id); !errors.Is(err, resource.ErrNotFound) {
			t.Errorf("Delete(%.20q): got %v, want ErrNotFound", id, err)
		}
		if _, err := b.Replace(ctx(t), s, resource.Item{ID: id, Version: 1, Data: object(id)}); !errors.Is(err, resource.ErrNotFound) {
			t.Errorf("Replace(%.20q): got %v, want ErrNotFound", id, err)
		}
	}
	if _, err := b.Get(ctx(t), n.stream("other"), "present"); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("Get from another stream: got %v, want ErrNotFound", err)
	}
}

func testCreateGet(t *testing.T, b Backend, n names) {
	s := n.stream("")
	data := object("a1", "text", `"hello"`, "n", "42", "ok", "true")
	in := slices.Clone(data)
	if err := b.Create(ctx(t), s, resource.Item{ID: "a1", Version: 7, Data: in}); err != nil {
		t.Fatal(err)
	}
	copy(in, bytes.Repeat([]byte{' '}, len(in))) // the store must not keep the caller's bytes
	checkItem(t, b, s, "a1", 1, data)
	got, _ := b.Get(ctx(t), s, "a1")
	clear(got.Data) // nor hand out its own
	checkItem(t, b, s, "a1", 1, data)
}

func testCreateExists(t *testing.T, b Backend, n names) {
	s := n.stream("")
	first := object("dup", "v", `"first"`)
	mustCreate(t, b, s, "dup", first)
	err := b.Create(ctx(t), s, resource.Item{ID: "dup", Data: object("dup", "v", `"second"`)})
	if !errors.Is(err, resource.ErrExists) {
		t.Fatalf("second Create: got %v, want ErrExists", err)
	}
	checkItem(t, b, s, "dup", 1, first)
	// The same id in another stream is another item.
	mustCreate(t, b, n.stream("2"), "dup", object("dup", "v", `"other"`))
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
	s := n.stream("")
	const workers = 8
	errs := race(workers, func(i int) error {
		return b.Create(ctx(t), s, resource.Item{ID: "x", Data: object("x", "w", strconv.Itoa(i))})
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both created the item", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, resource.ErrExists):
			t.Errorf("writer %d: got %v, want ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer created the item")
	}
	checkItem(t, b, s, "x", 1, object("x", "w", strconv.Itoa(winner)))
}

func testReplace(t *testing.T, b Backend, n names) {
	s := n.stream("")
	mustCreate(t, b, s, "r", object("r", "v", "1"))
	v, err := b.Replace(ctx(t), s, resource.Item{ID: "r", Version: 1, Data: object("r", "v", "2", "added", `"yes"`)})
	if err != nil || v != 2 {
		t.Fatalf("Replace at version 1: got %d, %v, want 2", v, err)
	}
	checkItem(t, b, s, "r", 2, object("r", "v", "2", "added", `"yes"`))
	for _, stale := range []int64{1, 3, 100} {
		_, err := b.Replace(ctx(t), s, resource.Item{ID: "r", Version: stale, Data: object("r", "v", `"stale"`)})
		if !errors.Is(err, resource.ErrConflict) {
			t.Errorf("Replace at version %d of version 2: got %v, want ErrConflict", stale, err)
		}
	}
	// Members not in the new data are gone: a replace is not a merge.
	v, err = b.Replace(ctx(t), s, resource.Item{ID: "r", Version: 2, Data: object("r", "v", "3")})
	if err != nil || v != 3 {
		t.Fatalf("Replace at version 2: got %d, %v, want 3", v, err)
	}
	checkItem(t, b, s, "r", 3, object("r", "v", "3"))
}

func testReplaceRace(t *testing.T, b Backend, n names) {
	s := n.stream("")
	mustCreate(t, b, s, "x", object("x", "w", "-1"))
	const workers = 8
	for round := int64(1); round <= 3; round++ {
		errs := race(workers, func(i int) error {
			v, err := b.Replace(ctx(t), s, resource.Item{ID: "x", Version: round, Data: object("x", "w", strconv.Itoa(i))})
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
			case !errors.Is(err, resource.ErrConflict):
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
	s := n.stream("")
	mustCreate(t, b, s, "d", object("d", "v", "1"))
	mustCreate(t, b, s, "keep", object("keep"))
	if _, err := b.Replace(ctx(t), s, resource.Item{ID: "d", Version: 1, Data: object("d", "v", "2")}); err != nil {
		t.Fatal(err)
	}
	old, err := b.Delete(ctx(t), s, "d")
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if old.ID != "d" || old.Version != 2 {
		t.Errorf("Delete: got id %q version %d, want d 2", old.ID, old.Version)
	}
	if err := sameJSON(old.Data, object("d", "v", "2")); err != nil {
		t.Errorf("Delete: old data: %v", err)
	}
	if _, err := b.Get(ctx(t), s, "d"); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("Get after Delete: got %v, want ErrNotFound", err)
	}
	if _, err := b.Delete(ctx(t), s, "d"); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("second Delete: got %v, want ErrNotFound", err)
	}
	if _, err := b.Replace(ctx(t), s, resource.Item{ID: "d", Version: 2, Data: object("d")}); !errors.Is(err, resource.ErrNotFound) {
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
	s := n.stream("")
	for _, c := range [][2]int{{0, 10}, {0, 1}, {5, 10}, {0, 0}} {
		items, err := b.List(ctx(t), s, c[0], c[1])
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
func checkList(t *testing.T, b Backend, s string, offset, limit int, want []string, data map[string][]byte) {
	t.Helper()
	items, err := b.List(ctx(t), s, offset, limit)
	if err != nil {
		t.Fatalf("List(%d, %d): %v", offset, limit, err)
	}
	got := make([]string, len(items))
	for i, it := range items {
		got[i] = it.ID
		if d, ok := data[it.ID]; ok {
			if err := sameJSON(it.Data, d); err != nil {
				t.Errorf("List(%d, %d): item %.40q: %v", offset, limit, it.ID, err)
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("List(%d, %d): got ids %.200q, want %.200q", offset, limit, got, want)
	}
}

func testListPages(t *testing.T, b Backend, n names) {
	s := n.stream("")
	ids := make([]string, 10)
	data := map[string][]byte{}
	for i := range ids {
		ids[i] = fmt.Sprintf("id%02d", i)
		data[ids[i]] = object(ids[i], "i", strconv.Itoa(i))
	}
	for _, i := range rand.Perm(len(ids)) { // order of writing is not order of listing
		mustCreate(t, b, s, ids[i], data[ids[i]])
	}
	// Items of a stream whose name extends this one's are not listed.
	mustCreate(t, b, s+"x", "id00", object("id00"))
	mustCreate(t, b, s+"x", "id99", object("id99"))
	if _, err := b.Replace(ctx(t), s, resource.Item{ID: "id04", Version: 1, Data: object("id04", "i", `"four"`)}); err != nil {
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
	items, err := b.List(ctx(t), s, 4, 1)
	if err != nil || len(items) != 1 || items[0].Version != 2 {
		t.Errorf("List(4, 1): got %+v, %v, want id04 at version 2", items, err)
	}
	if c, err := b.Count(ctx(t), s); err != nil || c != len(ids) {
		t.Errorf("Count: got %d, %v, want %d", c, err, len(ids))
	}
}

func testListByteOrder(t *testing.T, b Backend, n names) {
	s := n.stream("")
	// Ids sort by their UTF-8 bytes, as DynamoDB sorts string keys; note
	// U+FFFD before U+1F600, which UTF-16 order would reverse.
	ids := []string{"0", "9", "A", "Z", "_", "a", "z", "~", "\u00e9", "\u0436", "\u4e2d", "\ufffd", "\U0001f600", "\U0001f600a"}
	for _, i := range rand.Perm(len(ids)) {
		mustCreate(t, b, s, ids[i], object(ids[i]))
	}
	want := slices.Sorted(slices.Values(ids))
	checkList(t, b, s, 0, 100, want, nil)
	checkList(t, b, s, 10, 3, want[10:13], nil)
}

func testListPastOneMegabyte(t *testing.T, b Backend, n names) {
	s := n.stream("")
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
	s := n.stream("")
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
	m, ok := jsonw.ParseObject(it.Data)
	if !ok {
		t.Fatalf("Get: data is not a JSON object: %.200q", it.Data)
	}
	for i, num := range exactNumbers {
		raw, _ := jsonw.Lookup(m, fmt.Sprintf("n%02d", i))
		if string(raw) != num {
			t.Errorf("number %s read back as %s", num, raw)
		}
	}
	// The same numbers through Replace, and again in a list page.
	if _, err := b.Replace(ctx(t), s, resource.Item{ID: "nums", Version: 1, Data: data}); err != nil {
		t.Fatal(err)
	}
	checkList(t, b, s, 0, 1, []string{"nums"}, map[string][]byte{"nums": data})
}

func testNumbersOutOfRange(t *testing.T, b Backend, n names) {
	s := n.stream("")
	for i, num := range []string{
		"123456789012345678901234567890123456789",  // 39 significant digits
		"1.00000000000000000000000000000000000001", // 39 significant digits
		"1e126", "-1E+126", "1e-131", "-1e-131", "1e999999999999",
	} {
		id := fmt.Sprintf("n%d", i)
		data := object(id, "n", num)
		err := b.Create(ctx(t), s, resource.Item{ID: id, Data: data})
		if err != nil {
			if err.Error() == "" || errors.Is(err, resource.ErrExists) {
				t.Errorf("Create with %s: got %q, want an error that says why", num, err)
			}
			if _, err := b.Get(ctx(t), s, id); !errors.Is(err, resource.ErrNotFound) {
				t.Errorf("Get after a failed Create with %s: got %v, want ErrNotFound", num, err)
			}
			continue
		}
		// A backend that takes it must give it back exactly.
		checkItem(t, b, s, id, 1, data)
	}
}

func testUnicode(t *testing.T, b Backend, n names) {
	s := n.stream("ストリーム\U0001f30a")
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
	sub := resource.Subscription{
		Topic:  resource.Topic(s, "update", id),
		ConnID: n.conn("\U0001f600"),
		User:   resource.User{ID: "usér-\U0001f600", Claims: map[string]string{"rôle": "ädmin \U0001f451", "nul": "a\x00b"}},
	}
	if err := b.Subscribe(ctx(t), sub); err != nil {
		t.Fatal(err)
	}
	checkSubscribers(t, b, sub.Topic, []resource.Subscription{sub})
}

func testValues(t *testing.T, b Backend, n names) {
	s := n.stream("")
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
	s := n.stream("")
	// Just under the limit, with room for the names and keys.
	near := object("near", "blob", quote(strings.Repeat("x", ItemLimit-200)))
	mustCreate(t, b, s, "near", near)
	checkItem(t, b, s, "near", 1, near)
	version := int64(1)
	replace := func(data []byte) error {
		_, err := b.Replace(ctx(t), s, resource.Item{ID: "near", Version: version, Data: data})
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
		if err := b.Create(ctx(t), s, resource.Item{ID: over.id, Data: data}); err != nil {
			if _, err := b.Get(ctx(t), s, over.id); !errors.Is(err, resource.ErrNotFound) {
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

func sameUser(a, b resource.User) bool {
	return a.ID == b.ID && len(a.Claims) == len(b.Claims) && maps.Equal(a.Claims, b.Claims)
}

func checkSubscribers(t *testing.T, b Backend, topic string, want []resource.Subscription) {
	t.Helper()
	got, err := b.Subscribers(ctx(t), topic)
	if err != nil {
		t.Fatalf("Subscribers(%q): %v", topic, err)
	}
	if len(got) != len(want) {
		t.Fatalf("Subscribers(%q): got %d, want %d: %+v", topic, len(got), len(want), got)
	}
	for i := range want {
		if got[i].Topic != want[i].Topic || got[i].ConnID != want[i].ConnID || !sameUser(got[i].User, want[i].User) {
			t.Errorf("Subscribers(%q)[%d]: got %+v, want %+v", topic, i, got[i], want[i])
		}
	}
}

func testSubscribe(t *testing.T, b Backend, n names) {
	s := n.stream("")
	all := resource.Topic(s, "update", "")
	one := resource.Topic(s, "update", "1")
	ten := resource.Topic(s, "update", "10")
	checkSubscribers(t, b, all, nil)
	alice := resource.User{ID: "alice", Claims: map[string]string{"scope": "read write", "email": "a@example.com"}}
	bob := resource.User{ID: "bob"}
	subs := []resource.Subscription{
		{Topic: all, ConnID: n.conn("c"), User: alice},
		{Topic: all, ConnID: n.conn("a")},
		{Topic: all, ConnID: n.conn("b"), User: bob},
		{Topic: one, ConnID: n.conn("a")},
		{Topic: ten, ConnID: n.conn("b"), User: bob},
	}
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
	checkSubscribers(t, b, all, []resource.Subscription{subs[1], subs[2], subs[0]})
	checkSubscribers(t, b, one, []resource.Subscription{subs[3]})
	checkSubscribers(t, b, ten, []resource.Subscription{subs[4]})
	checkSubscribers(t, b, resource.Topic(s, "delete", ""), nil)
	checkSubscribers(t, b, resource.Topic(s, "update", "100"), nil)
}

func testSubscribersMany(t *testing.T, b Backend, n names) {
	topic := resource.Topic(n.stream(""), "create", "")
	var want []resource.Subscription
	for i := range 60 {
		sub := resource.Subscription{Topic: topic, ConnID: n.conn(fmt.Sprintf("%03d", i)), User: resource.User{ID: fmt.Sprint("u", i)}}
		want = append(want, sub)
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
		if err := b.PutConn(ctx(t), abi.ConnEvent{Kind: abi.EventConnect, ConnID: c, At: time.Now().UnixMilli()}); err != nil {
			t.Fatal(err)
		}
	}
	// 60 topics for the connection that goes: three batches of deletes.
	topics := make([]string, 60)
	for i := range topics {
		topics[i] = resource.Topic(s, "update", strconv.Itoa(i))
		if err := b.Subscribe(ctx(t), resource.Subscription{Topic: topics[i], ConnID: gone}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := b.Subscribe(ctx(t), resource.Subscription{Topic: topics[i], ConnID: stays}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A connection whose id extends the one that goes keeps its own.
	longer := gone + "x"
	if err := b.Subscribe(ctx(t), resource.Subscription{Topic: topics[1], ConnID: longer}); err != nil {
		t.Fatal(err)
	}
	if err := b.DropConn(ctx(t), gone); err != nil {
		t.Fatalf("DropConn: %v", err)
	}
	for i, topic := range topics {
		var want []resource.Subscription
		if i%2 == 0 {
			want = append(want, resource.Subscription{Topic: topic, ConnID: stays})
		}
		if i == 1 {
			want = append(want, resource.Subscription{Topic: topic, ConnID: longer})
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
	e := abi.ConnEvent{
		Kind:   abi.EventConnect,
		ConnID: n.conn("1"),
		User:   resource.User{ID: "alice", Claims: map[string]string{"scope": "admin"}},
		At:     time.Now().UnixMilli(),
	}
	anon := abi.ConnEvent{Kind: abi.EventConnect, ConnID: n.conn("2"), At: e.At + 1}
	for _, ev := range []abi.ConnEvent{e, anon} {
		if err := b.PutConn(ctx(t), ev); err != nil {
			t.Fatalf("PutConn(%s): %v", ev.ConnID, err)
		}
	}
	r, ok := b.(ConnReader)
	if !ok {
		return
	}
	check := func(want abi.ConnEvent) {
		t.Helper()
		got, ok, err := r.Conn(ctx(t), want.ConnID)
		if !ok || err != nil || got.ConnID != want.ConnID || got.At != want.At || !sameUser(got.User, want.User) {
			t.Errorf("Conn(%s): got %+v, %v, %v, want %+v", want.ConnID, got, ok, err, want)
		}
	}
	check(e)
	check(anon)
	// A reconnect under the same id replaces the record.
	e.User = resource.User{ID: "bob"}
	e.At++
	if err := b.PutConn(ctx(t), e); err != nil {
		t.Fatal(err)
	}
	check(e)
	if _, ok, err := r.Conn(ctx(t), n.conn("none")); ok || err != nil {
		t.Errorf("Conn of an unknown connection: got %v, %v", ok, err)
	}
}
