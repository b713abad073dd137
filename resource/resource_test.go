package resource_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsbind/wsbind/internal/backend/memory"
	"github.com/wsbind/wsbind/resource"
)

type thing struct {
	ID   string
	Name string
}

func thingBinding(mod func(*resource.Binding[thing])) resource.Binding[thing] {
	b := resource.Binding[thing]{
		Stream: "things",
		Model:  "app.thing",
		ID:     func(t *thing) *string { return &t.ID },
		Fields: []resource.Field[thing]{resource.String("name", func(t *thing) *string { return &t.Name }, resource.Required())},
	}
	if mod != nil {
		mod(&b)
	}
	return b
}

func TestIDs_New(t *testing.T) {
	var g resource.IDs
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 5000 {
		// Many ids share a millisecond; the clock also steps back once.
		at := now.Add(time.Duration(i/1000) * time.Millisecond)
		if i == 2500 {
			at = now
		}
		ids = append(ids, g.New(at))
	}
	for i, id := range ids {
		if len(id) != 26 || strings.Trim(id, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") != "" {
			t.Fatalf("id %d = %q, want 26 Crockford base-32 characters", i, id)
		}
		if i > 0 && id <= ids[i-1] {
			t.Fatalf("id %d = %s, not after %s", i, id, ids[i-1])
		}
	}
	// The first 10 characters are the milliseconds.
	if got, want := ids[0][:10], resource.NewID(now)[:10]; got != want {
		t.Errorf("time prefix = %s, want %s", got, want)
	}
}

func TestIDs_Concurrent(t *testing.T) {
	var g resource.IDs
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				id := g.New(time.Now())
				mu.Lock()
				if seen[id] {
					t.Errorf("duplicate id %s", id)
				}
				seen[id] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func TestNew_RejectsBadDeclarations(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*resource.Binding[thing])
		want string
	}{
		{"empty stream", func(b *resource.Binding[thing]) { b.Stream = "" }, "empty stream"},
		{"stream with #", func(b *resource.Binding[thing]) { b.Stream = "a#b" }, "only letters"},
		{"model without app", func(b *resource.Binding[thing]) { b.Model = "thing" }, "app.model"},
		{"no ID", func(b *resource.Binding[thing]) { b.ID = nil }, "no ID accessor"},
		{"field id", func(b *resource.Binding[thing]) {
			b.Fields = append(b.Fields, resource.String("id", func(t *thing) *string { return &t.ID }))
		}, "declared twice"},
		{"reserved field name", func(b *resource.Binding[thing]) {
			b.Fields = append(b.Fields, resource.String("_version", func(t *thing) *string { return &t.Name }))
		}, "reserved"},
		{"zero field", func(b *resource.Binding[thing]) { b.Fields = append(b.Fields, resource.Field[thing]{}) }, "field constructor"},
		{"read and write only", func(b *resource.Binding[thing]) {
			b.Fields = []resource.Field[thing]{resource.String("name", func(t *thing) *string { return &t.Name }, resource.ReadOnly(), resource.WriteOnly())}
		}, "read-only and write-only"},
		{"action shadows built-in", func(b *resource.Binding[thing]) {
			b.Actions = []resource.Action[thing]{resource.ListAction("list", func(*resource.Call[thing]) (any, int, error) { return nil, 0, nil })}
		}, "shadows a built-in"},
		{"action without function", func(b *resource.Binding[thing]) {
			b.Actions = []resource.Action[thing]{resource.ListAction[thing]("x", nil)}
		}, "no function"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resource.New(thingBinding(tt.mod))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestRegistry_Register(t *testing.T) {
	h := resource.MustNew(thingBinding(nil))
	reg := resource.NewRegistry(resource.Settings{})
	if err := reg.Register(h); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(h); err == nil {
		t.Error("got nil registering a stream twice, want an error")
	}
	if got := reg.Lookup("things"); got != h {
		t.Errorf("Lookup = %v, want the handler", got)
	}
	if got := reg.Lookup("nope"); got != nil {
		t.Errorf("Lookup(nope) = %v, want nil", got)
	}
	if got := reg.Settings().PageSize; got != resource.DefaultPageSize {
		t.Errorf("default page size = %d, want %d", got, resource.DefaultPageSize)
	}
}

func serve(t *testing.T, h *resource.Handler, env resource.Env, req resource.Request) (resource.Result, error) {
	t.Helper()
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	return h.Serve(context.Background(), env, req)
}

func TestSettings_Defaults(t *testing.T) {
	// Global settings apply to bindings that do not set their own.
	h := resource.MustNew(thingBinding(nil))
	st := memory.New()
	env := resource.Env{Store: st, Settings: resource.Settings{PageSize: 2, Permissions: []resource.Permission{resource.IsAuthenticated}}}
	if _, err := serve(t, h, env, resource.Request{Action: "list"}); resource.CodeOf(err) != resource.CodePermissionDenied {
		t.Fatalf("anonymous list: got %v, want permission denied from the default permissions", err)
	}
	user := resource.User{ID: "u"}
	for i := range 3 {
		if _, err := serve(t, h, env, resource.Request{Action: "create", User: user, Data: []byte(fmt.Sprintf(`{"name":"n%d"}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := serve(t, h, env, resource.Request{Action: "list", User: user})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(res.Data), `"name"`); n != 2 {
		t.Errorf("page 1 holds %d objects, want the page size 2: %s", n, res.Data)
	}
	// A binding's own permissions win over the default.
	open := resource.MustNew(thingBinding(func(b *resource.Binding[thing]) {
		b.Permissions = []resource.Permission{resource.AllowAny}
	}))
	if _, err := serve(t, open, env, resource.Request{Action: "list"}); err != nil {
		t.Errorf("anonymous list on AllowAny binding: got %v, want success", err)
	}
}

// conflicting makes the first n Replace calls lose to a concurrent writer.
type conflicting struct {
	*memory.Store
	n, calls int
}

func (c *conflicting) Replace(ctx context.Context, stream string, it resource.Item) (int64, error) {
	c.calls++
	if c.calls <= c.n {
		// Another writer got there first: bump the stored version.
		cur, err := c.Store.Get(ctx, stream, it.ID)
		if err != nil {
			return 0, err
		}
		c.Store.Put(stream, resource.Item{ID: cur.ID, Data: []byte(`{"id":"` + cur.ID + `","name":"theirs"}`)})
		return 0, resource.ErrConflict
	}
	return c.Store.Replace(ctx, stream, it)
}

func TestCall_UpdateRetriesConflicts(t *testing.T) {
	h := resource.MustNew(thingBinding(nil))
	for _, tt := range []struct {
		conflicts int
		wantCode  resource.Code
	}{{0, 0}, {1, 0}, {3, 0}, {4, resource.CodeConflict}} {
		st := &conflicting{Store: memory.New(), n: tt.conflicts}
		st.Store.Put("things", resource.Item{ID: "t1", Data: []byte(`{"id":"t1","name":"mine"}`)})
		env := resource.Env{Store: st}
		res, err := serve(t, h, env, resource.Request{Action: "patch", PK: "t1", Data: []byte(`{"name":"patched"}`)})
		if tt.wantCode == 0 {
			if err != nil || !strings.Contains(string(res.Data), `"patched"`) {
				t.Errorf("%d conflicts: got %s, %v; want the patch applied on retry", tt.conflicts, res.Data, err)
			}
			continue
		}
		if got := resource.CodeOf(err); got != tt.wantCode {
			t.Errorf("%d conflicts: got code %d (%v), want %d", tt.conflicts, got, err, tt.wantCode)
		}
	}
}

func TestCreate_TakenIDs(t *testing.T) {
	h := resource.MustNew(thingBinding(func(b *resource.Binding[thing]) {
		b.NewID = func(time.Time) string { return "same" }
	}))
	env := resource.Env{Store: memory.New()}
	if _, err := serve(t, h, env, resource.Request{Action: "create", Data: []byte(`{"name":"a"}`)}); err != nil {
		t.Fatal(err)
	}
	_, err := serve(t, h, env, resource.Request{Action: "create", Data: []byte(`{"name":"b"}`)})
	e := resource.AsError(err)
	if e == nil || e.Code() != resource.CodeInvalid || len(e.Fields()) != 1 || e.Fields()[0].Messages[0] != "thing with this id already exists." {
		t.Errorf("got %v, want 400 {id: thing with this id already exists.}", err)
	}
}

func TestCodeOf(t *testing.T) {
	tests := []struct {
		err  error
		want resource.Code
	}{
		{resource.NotFound(), resource.CodeNotFound},
		{fmt.Errorf("wrapped: %w", resource.PermissionDenied()), resource.CodePermissionDenied},
		{errors.New("plain"), resource.CodeInternal},
		{resource.Internal(errors.New("x")), resource.CodeInternal},
	}
	for _, tt := range tests {
		if got := resource.CodeOf(tt.err); got != tt.want {
			t.Errorf("CodeOf(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	if got := resource.Internal(errors.New("secret")).Messages(); !slices.Equal(got, []string{"Internal Server Error"}) {
		t.Errorf("internal messages = %q, want only the public text", got)
	}
	if got := resource.Invalid().Messages(); len(got) == 0 {
		t.Error("Invalid() has no message; a failed reply must carry one")
	}
}

func TestHandler_Actions(t *testing.T) {
	ro := resource.MustNew(thingBinding(func(b *resource.Binding[thing]) {
		b.ReadOnly = true
		b.Actions = []resource.Action[thing]{resource.DetailAction("touch", func(*resource.Call[thing]) (any, int, error) { return nil, 0, nil })}
	}))
	var names []string
	for _, a := range ro.Actions() {
		names = append(names, a.Name)
	}
	if want := []string{"retrieve", "list", "touch"}; !slices.Equal(names, want) {
		t.Errorf("read-only actions = %v, want %v", names, want)
	}
}
