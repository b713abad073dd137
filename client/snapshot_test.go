package client

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// truthData is stream's objects as the fake holds them, pk → JSON.
func (f *fake) truthData(stream string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for pk, o := range f.objects[stream] {
		b, _ := json.Marshal(o.data)
		out[pk] = string(b)
	}
	return out
}

// canonical re-marshals a JSON object with sorted keys.
func canonical(raw json.RawMessage) string {
	var v map[string]any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// sameAs reports how the snapshot's objects differ from want ("" if not).
func sameAs(objects map[string]Object, want map[string]string) string {
	for pk, w := range want {
		o, ok := objects[pk]
		if !ok {
			return "missing " + pk
		}
		if got := canonical(o.Data); got != w {
			return fmt.Sprintf("%s is %s, want %s", pk, got, w)
		}
	}
	for pk := range objects {
		if _, ok := want[pk]; !ok {
			return "extra " + pk
		}
	}
	return ""
}

// waitSame waits until sn holds exactly want, failing with the
// difference.
func waitSame(t testing.TB, sn *Snapshot, want map[string]string) {
	t.Helper()
	var diff string
	err := sn.Wait(ctxT(t), func(objects map[string]Object) bool {
		diff = sameAs(objects, want)
		return diff == ""
	})
	if err != nil {
		t.Fatalf("snapshot never matched the server (%s): %v", diff, err)
	}
}

// writer makes random writes on stream: updates, creates, deletes.
type writer struct {
	f   *fake
	rnd *rand.Rand
	n   int
}

func (w *writer) step(stream string) {
	w.n++
	pks := slices.Sorted(maps.Keys(w.f.truth(stream)))
	switch k := w.rnd.IntN(10); {
	case k < 2 || len(pks) == 0:
		w.f.write(stream, "create", "", map[string]any{"n": w.n})
	case k < 3:
		w.f.write(stream, "delete", pks[w.rnd.IntN(len(pks))], nil)
	default:
		w.f.write(stream, "update", pks[w.rnd.IntN(len(pks))], map[string]any{"n": w.n})
	}
}

// TestSnapshot: a snapshot built while the stream changes between its
// pages, kept through live changes and a reconnect with changes made
// while away, holds exactly the server's objects: the replay from the
// first page's cursor covers what the pages missed, and versions drop
// what is seen twice.
func TestSnapshot(t *testing.T) {
	f := newFake(t)
	for i := range 60 {
		f.write("items", "create", "", map[string]any{"n": -i})
	}
	w := &writer{f: f, rnd: rand.New(rand.NewPCG(1, 2))}
	var once sync.Once
	f.set(func(f *fake) {
		f.listDelay = 5 * time.Millisecond
		f.repeat = true
		// Between page 1 and the others: changes on page 1 (missed by
		// the list) and on page 3 (seen by it), and new objects.
		f.onListPage1 = func() {
			once.Do(func() {
				f.write("items", "update", "id0001", map[string]any{"n": "changed after page 1"})
				f.write("items", "update", "id0055", map[string]any{"n": "changed before page 3"})
				f.write("items", "create", "", map[string]any{"n": "new"})
				f.write("items", "delete", "id0060", nil)
			})
		}
	})
	c, st := dialFake(t, f, Options{})
	sn, err := c.Stream("items").Snapshot(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := sameAs(viewOf(sn), f.truthData("items")); diff != "" {
		t.Fatalf("snapshot as returned: %s", diff)
	}
	if o, _ := sn.Get("id0001"); o.Version != 2 {
		t.Errorf("id0001 at version %d, want 2 (from the replay)", o.Version)
	}
	for range 30 {
		w.step("items")
	}
	letIn := cut(t, f, st)
	for range 30 {
		w.step("items")
	}
	letIn()
	for range 30 {
		w.step("items")
	}
	waitSame(t, sn, f.truthData("items"))
	if sn.Relists() != 0 {
		t.Errorf("%d relists, want none: every gap was replayed", sn.Relists())
	}
	if sn.Duplicates() == 0 {
		t.Errorf("no duplicates dropped, though every push was sent twice")
	}
	t.Logf("%d objects; %d repeated pushes dropped; client stats %+v", sn.Len(), sn.Duplicates(), c.Stats())
	if err := sn.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(f.requestsOf("unsubscribe")); n != 3 {
		t.Errorf("%d unsubscribes after Close, want 3", n)
	}
}

// listData is the data of every list request f received, as sent.
func listData(f *fake) []string {
	var out []string
	for _, p := range f.requestsOf("list") {
		out = append(out, string(p.Data))
	}
	return out
}

// TestSnapshot_DeleteBehind: objects of page 1 deleted while the
// snapshot lists shift nothing: each page is read after the last pk of
// the one before, so no object moves past the page that should hold it
// (by page number, page 2 would start three objects late, and those
// three, never changed, would never be pushed either).
func TestSnapshot_DeleteBehind(t *testing.T) {
	f := newFake(t)
	for i := range 60 {
		f.write("items", "create", "", map[string]any{"n": -i})
	}
	var once sync.Once
	f.set(func(f *fake) {
		f.onListPage1 = func() {
			once.Do(func() {
				for _, pk := range []string{"id0001", "id0002", "id0003"} {
					f.write("items", "delete", pk, nil)
				}
			})
		}
	})
	c, _ := dialFake(t, f, Options{})
	sn, err := c.Stream("items").Snapshot(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := sameAs(viewOf(sn), f.truthData("items")); diff != "" {
		t.Fatalf("snapshot as returned: %s", diff)
	}
	want := []string{"", `{"after":"id0025"}`, `{"after":"id0050"}`}
	if got := listData(f); !slices.Equal(got, want) {
		t.Errorf("list requests %q, want %q", got, want)
	}
}

// TestSnapshot_Gap: when the server cannot replay what happened while
// the client was away, the snapshot lists again and is right again.
func TestSnapshot_Gap(t *testing.T) {
	f := newFake(t)
	f.set(func(f *fake) { f.pageSize = 7 })
	for i := range 20 {
		f.write("items", "create", "", map[string]any{"n": -i})
	}
	c, st := dialFake(t, f, Options{})
	sn, err := c.Stream("items").Snapshot(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{f: f, rnd: rand.New(rand.NewPCG(3, 4))}
	letIn := cut(t, f, st)
	for range 40 {
		w.step("items")
	}
	f.set(func(f *fake) { f.retained = f.seq })
	letIn()
	waitSame(t, sn, f.truthData("items"))
	for range 10 {
		w.step("items")
	}
	waitSame(t, sn, f.truthData("items"))
	if sn.Relists() == 0 {
		t.Errorf("no relist after a gap")
	}
	t.Logf("%d objects; %d relists; %d duplicates dropped", sn.Len(), sn.Relists(), sn.Duplicates())
}

// TestSnapshot_NoCursors: against a server without cursors,
// the snapshot is still exact: it subscribes before listing and applies
// the pushes that arrive meanwhile on top of the pages, and lists again
// after each reconnect.
func TestSnapshot_NoCursors(t *testing.T) {
	f := newFake(t)
	for i := range 30 {
		f.write("items", "create", "", map[string]any{"n": -i})
	}
	var once sync.Once
	f.set(func(f *fake) {
		f.noCursors = true
		f.pageSize = 10
		f.onListPage1 = func() {
			once.Do(func() {
				f.write("items", "update", "id0002", map[string]any{"n": "after page 1"})
				f.write("items", "create", "", map[string]any{"n": "new"})
			})
		}
	})
	c, st := dialFake(t, f, Options{})
	sn, err := c.Stream("items").Snapshot(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := sameAs(viewOf(sn), f.truthData("items")); diff != "" {
		t.Fatalf("snapshot as returned: %s", diff)
	}
	w := &writer{f: f, rnd: rand.New(rand.NewPCG(5, 6))}
	letIn := cut(t, f, st)
	for range 20 {
		w.step("items")
	}
	letIn()
	waitSame(t, sn, f.truthData("items"))
	if sn.Relists() == 0 {
		t.Errorf("no relist after a reconnect without cursors")
	}
	// The server ignored after and sent page 1 again: the client listed
	// by page number instead.
	if got := listData(f); len(got) < 5 || got[0] != "" || got[1] != `{"after":"id0010"}` || got[2] != `{"page":1}` || got[3] != `{"page":2}` {
		t.Errorf("list requests %q, want the first page, one after, then pages 1, 2, ...", got)
	}
	t.Logf("%d objects; %d relists; %d duplicates dropped", sn.Len(), sn.Relists(), sn.Duplicates())
}

// viewOf is the snapshot's objects as a map, for sameAs.
func viewOf(sn *Snapshot) map[string]Object {
	out := map[string]Object{}
	for _, o := range sn.Objects() {
		out[o.PK] = o
	}
	return out
}
