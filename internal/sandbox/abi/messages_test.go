package abi_test

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/wsbind/wsbind/internal/core/identity"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/sandbox/abi"
)

// TestWorkedExample checks the bytes of the package doc's worked example.
func TestWorkedExample(t *testing.T) {
	var req abi.Writer
	req.Part(store.Part{Stream: "questions"})
	req.String("q1")
	wantReq := []byte("\x09\x00\x00\x00questions" + "\x00\x00\x00\x00" + "\x00" + "\x02\x00\x00\x00q1")
	if !bytes.Equal(req.B, wantReq) {
		t.Errorf("request: got % x, want % x", req.B, wantReq)
	}
	var res abi.Writer
	res.Item(store.Item{ID: "q1", Version: 2, Data: []byte(`{"id":"q1"}`)})
	wantRes := []byte("\x02\x00\x00\x00q1" + "\x00\x00\x00\x00" + "\x02\x00\x00\x00\x00\x00\x00\x00" + "\x0b\x00\x00\x00" + `{"id":"q1"}`)
	if !bytes.Equal(res.B, wantRes) {
		t.Errorf("result: got % x, want % x", res.B, wantRes)
	}
	if got := abi.PackResult(abi.OK, uint32(len(res.B))); got != 0x00000000_00000021 {
		t.Errorf("PackResult(OK, %d): got %#x, want 0x21", len(res.B), got)
	}
	for _, v := range []struct {
		version int64
		want    string
	}{{2, "\x02\x00\x00\x00\x00\x00\x00\x00"}, {store.AnyVersion, "\xff\xff\xff\xff\xff\xff\xff\xff"}} {
		del := abi.Writer{B: slices.Clone(req.B)}
		del.U64(uint64(v.version))
		if want := append(slices.Clone(wantReq), v.want...); !bytes.Equal(del.B, want) {
			t.Errorf("store_delete at version %d: got % x, want % x", v.version, del.B, want)
		}
	}
	var scope abi.Writer
	scope.String("alice")
	if want := []byte("\x05\x00\x00\x00alice"); !bytes.Equal(scope.B, want) {
		t.Errorf("scope: got % x, want % x", scope.B, want)
	}
}

// TestRoundTrip writes each message and reads it back.
func TestRoundTrip(t *testing.T) {
	users := []identity.User{
		{},
		{ID: "alice"},
		{ID: "alice", Roles: []string{"admin", "editor", ""}},
		{ID: "bob", Claims: map[string]string{"email": "b@example.com", "": "empty"}},
		{ID: "carol", Roles: []string{"staff"}, Claims: map[string]string{"exp": "1800000000"}},
	}
	for _, u := range users {
		var w abi.Writer
		w.User(u)
		r := abi.NewReader(w.B)
		if got := r.User(); !reflect.DeepEqual(got, u) || r.Done() != nil {
			t.Errorf("User %+v: read back %+v, %v", u, got, r.Done())
		}
	}
	for _, p := range []store.Part{{}, {Stream: "notes"}, {Stream: "notes", Scope: "alice"}, {Stream: "notes", All: true}} {
		var w abi.Writer
		w.Part(p)
		r := abi.NewReader(w.B)
		if got := r.Part(); got != p || r.Done() != nil {
			t.Errorf("Part %+v: read back %+v, %v", p, got, r.Done())
		}
	}
	it := store.Item{ID: "n1", Scope: "alice#1", Version: 7, Data: []byte(`{"id":"n1"}`)}
	var w abi.Writer
	w.Item(it)
	r := abi.NewReader(w.B)
	if got := r.Item(); !reflect.DeepEqual(got, it) || r.Done() != nil {
		t.Errorf("Item: read back %+v, %v", got, r.Done())
	}
	sub := store.Subscription{Topic: "notes#update", ConnID: "c1", Filter: `{"done":true}`, User: users[4]}
	w = abi.Writer{}
	w.Subscription(sub)
	r = abi.NewReader(w.B)
	if got := r.Subscription(); !reflect.DeepEqual(got, sub) || r.Done() != nil {
		t.Errorf("Subscription: read back %+v, %v", got, r.Done())
	}
	// AnyVersion travels as the U64 that reads back as store.AnyVersion.
	anyVersion := int64(store.AnyVersion)
	w = abi.Writer{}
	w.U64(uint64(anyVersion))
	if v := abi.NewReader(w.B).U64(); v != abi.AnyVersion || int64(v) != store.AnyVersion {
		t.Errorf("backend.AnyVersion travels as %#x, want abi.AnyVersion, reading back as -1", v)
	}
}

// TestUser_Short checks that a role or claim count past the buffer fails
// without allocating for it.
func TestUser_Short(t *testing.T) {
	for _, b := range [][]byte{
		[]byte("\x00\x00\x00\x00" + "\xff\xff\xff\xff\xff\xff\xff\xff"),
		[]byte("\x00\x00\x00\x00" + "\x00\x00\x00\x00\x00\x00\x00\x00" + "\xff\xff\xff\xff\xff\xff\xff\x7f"),
		[]byte("\x00\x00\x00\x00" + "\x02\x00\x00\x00\x00\x00\x00\x00" + "\x00\x00\x00\x00"),
	} {
		r := abi.NewReader(b)
		r.User()
		if err := r.Done(); !errors.Is(err, abi.ErrShort) {
			t.Errorf("User of % x: got %v, want ErrShort", b, err)
		}
	}
}

// TestFuncs checks that every host function has an import name and that
// the numbers of the first ones never moved.
func TestFuncs(t *testing.T) {
	for i, name := range abi.Funcs {
		if name == "" {
			t.Errorf("Func %d has no import name", i)
		}
	}
	for fn, want := range map[abi.Func]int{abi.FuncStoreGet: 0, abi.FuncSubscribers: 7, abi.FuncNow: 12, abi.FuncUnsubscribe: 13} {
		if int(fn) != want {
			t.Errorf("%s is %d, want %d", fn, fn, want)
		}
	}
}

// SubscriptionInterned reads what Subscription reads, and shares the
// values that repeat across records.
func TestReader_SubscriptionInterned(t *testing.T) {
	subs := []store.Subscription{
		{Topic: "notes#update", ConnID: "c1", Filter: `{"pinned":true}`, User: identity.User{ID: "a", Roles: []string{"staff", "admin"}}},
		{Topic: "notes#update", ConnID: "c2", Filter: `{"pinned":true}`, User: identity.User{ID: "b", Roles: []string{"staff", "admin"}, Claims: map[string]string{"exp": "9"}}},
		{Topic: "notes#update#n1", ConnID: "c3", User: identity.User{ID: "c", Roles: []string{"admin"}}},
		{Topic: "notes#update#n1", ConnID: "c4"},
	}
	var w abi.Writer
	for _, s := range subs {
		w.Subscription(s)
	}
	plain, interned := abi.NewReader(w.B), abi.NewReader(w.B)
	in := abi.NewInterner()
	var got []store.Subscription
	for _, want := range subs {
		p, s := plain.Subscription(), interned.SubscriptionInterned(in)
		if !reflect.DeepEqual(p, want) || !reflect.DeepEqual(s, want) {
			t.Errorf("got %+v and %+v, want %+v", p, s, want)
		}
		got = append(got, s)
	}
	if err := interned.Done(); err != nil {
		t.Fatal(err)
	}
	if &got[0].User.Roles[0] != &got[1].User.Roles[0] {
		t.Error("equal role lists were decoded twice, want one shared list")
	}
}
