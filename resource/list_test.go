package resource_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/wsbind/wsbind/internal/core/call"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/core/store/memory"
	"github.com/wsbind/wsbind/resource"
)

// listing records the store's List calls, and before the second one
// deletes the first item of its part, as a concurrent request would.
type listing struct {
	*memory.Store
	calls []string // "after/offset"
}

func (l *listing) List(ctx context.Context, p store.Part, after string, offset, limit int) ([]store.Item, error) {
	l.calls = append(l.calls, fmt.Sprintf("%s/%d", after, offset))
	if len(l.calls) == 2 {
		first, err := l.Store.List(ctx, p, "", 0, 1)
		if err != nil || len(first) != 1 {
			return nil, fmt.Errorf("no first item: %v", err)
		}
		if _, err := l.Store.Delete(ctx, store.Part{Stream: p.Stream, Scope: first[0].Scope}, first[0].ID, store.AnyVersion); err != nil {
			return nil, err
		}
	}
	return l.Store.List(ctx, p, after, offset, limit)
}

// owned is a scoped binding whose admins see every scope, with a list
// action that counts the objects Each visits.
type owned struct{ ID, Owner string }

func ownedBinding() *resource.Handler {
	return resource.MustNew(resource.Binding[owned]{
		Stream: "owned",
		Model:  "app.owned",
		ID:     func(o *owned) *string { return &o.ID },
		Fields: []resource.Field[owned]{resource.String("owner", func(o *owned) *string { return &o.Owner }, resource.ReadOnly())},
		Scope:  resource.OwnedBy(func(o *owned) *string { return &o.Owner }, "admin"),
		Actions: []resource.Action[owned]{resource.ListAction("visit", func(c *resource.Call[owned]) (any, int, error) {
			var ids []string
			err := c.Each(func(o *owned) bool { ids = append(ids, o.ID+"@"+o.Owner); return true })
			return strings.Join(ids, ","), 200, err
		})},
	})
}

func putOwned(st *memory.Store, id, owner string) {
	st.Put("owned", store.Item{ID: id, Scope: owner, Data: []byte(`{"id":"` + id + `","owner":"` + owner + `"}`)})
}

// TestEach_Keyset: Each reads its batches after the last id of the one
// before, so an object deleted behind it makes it skip no other (by
// offset, the second batch would start one object late), and a run of
// one id in several scopes across a batch's end is visited whole.
func TestEach_Keyset(t *testing.T) {
	h := ownedBinding()
	mem := memory.New()
	var want []string
	for i := range 99 {
		id := fmt.Sprintf("i%03d", i)
		putOwned(mem, id, "alice")
		want = append(want, id+"@alice")
	}
	for _, owner := range []string{"alice", "bob", "carol"} { // the 100th id, in three scopes
		putOwned(mem, "i099", owner)
		want = append(want, "i099@"+owner)
	}
	for i := 100; i < 150; i++ {
		id := fmt.Sprintf("i%03d", i)
		putOwned(mem, id, "bob")
		want = append(want, id+"@bob")
	}
	st := &listing{Store: mem}
	res, err := serve(t, h, env{Store: st}, call.Request{Action: "visit", User: resource.User{ID: "root", Roles: []string{"admin"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Split(strings.Trim(string(res.Data), `"`), ","); !slices.Equal(got, want) {
		t.Errorf("Each visited %d objects, want %d:\n got %q\nwant %q", len(got), len(want), got, want)
	}
	if wantCalls := []string{"/0", "i099/0"}; !slices.Equal(st.calls, wantCalls) {
		t.Errorf("List calls %q, want %q", st.calls, wantCalls)
	}
}

// TestList_AfterEveryScope: a page of every scope holds the page size
// at most, even where the store runs on to the end of a run of one id in
// several scopes; the page after that id starts at the next id. A
// client, which keys objects by pk, has every pk.
func TestList_AfterEveryScope(t *testing.T) {
	h := ownedBinding()
	mem := memory.New()
	putOwned(mem, "a1", "alice")
	putOwned(mem, "b2", "alice")
	putOwned(mem, "b2", "bob")
	putOwned(mem, "c3", "bob")
	e := env{Store: mem, Settings: resource.Settings{PageSize: 2}}
	root := resource.User{ID: "root", Roles: []string{"admin"}}
	page := func(data string) []string {
		t.Helper()
		res, err := serve(t, h, e, call.Request{Action: "list", User: root, Data: []byte(data)})
		if err != nil {
			t.Fatalf("list %s: %v", data, err)
		}
		var out []string
		for _, en := range res.Page {
			out = append(out, string(en.Data))
		}
		return out
	}
	for _, c := range []struct {
		data string
		want []string
	}{
		{``, []string{`{"id":"a1","owner":"alice"}`, `{"id":"b2","owner":"alice"}`}},
		{`{"after":"b2"}`, []string{`{"id":"c3","owner":"bob"}`}},
		{`{"after":"a1"}`, []string{`{"id":"b2","owner":"alice"}`, `{"id":"b2","owner":"bob"}`}},
		{`{"page":2}`, []string{`{"id":"b2","owner":"bob"}`, `{"id":"c3","owner":"bob"}`}},
	} {
		if got := page(c.data); !slices.Equal(got, c.want) {
			t.Errorf("list %s: got %q, want %q", c.data, got, c.want)
		}
	}
}
