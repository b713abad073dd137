package resource_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsbind/wsbind/internal/core/apierr"
	"github.com/wsbind/wsbind/internal/core/call"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/core/store/memory"
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

// env is what a test serves a binding with.
type env struct {
	Store    store.Store
	Settings resource.Settings
}

func serve(t *testing.T, h *resource.Handler, e env, req call.Request) (call.Result, error) {
	t.Helper()
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	return h.Serve(context.Background(), &e.Settings, e.Store, req)
}

func TestSettings_Defaults(t *testing.T) {
	// Global settings apply to bindings that do not set their own.
	h := resource.MustNew(thingBinding(nil))
	st := memory.New()
	env := env{Store: st, Settings: resource.Settings{PageSize: 2, Permissions: []resource.Permission{resource.IsAuthenticated}}}
	if _, err := serve(t, h, env, call.Request{Action: "list"}); apierr.CodeOf(err) != apierr.CodePermissionDenied {
		t.Fatalf("anonymous list: got %v, want permission denied from the default permissions", err)
	}
	user := resource.User{ID: "u"}
	for i := range 3 {
		if _, err := serve(t, h, env, call.Request{Action: "create", User: user, Data: []byte(fmt.Sprintf(`{"name":"n%d"}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := serve(t, h, env, call.Request{Action: "list", User: user})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Page); n != 2 {
		t.Errorf("page 1 holds %d objects, want the page size 2: %v", n, res.Page)
	}
	// A binding's own permissions win over the default.
	open := resource.MustNew(thingBinding(func(b *resource.Binding[thing]) {
		b.Permissions = []resource.Permission{resource.AllowAny}
	}))
	if _, err := serve(t, open, env, call.Request{Action: "list"}); err != nil {
		t.Errorf("anonymous list on AllowAny binding: got %v, want success", err)
	}
}

// conflicting makes the first n Replace calls lose to a concurrent writer.
type conflicting struct {
	*memory.Store
	n, calls int
}

func (c *conflicting) Replace(ctx context.Context, p store.Part, it store.Item) (int64, error) {
	c.calls++
	if c.calls <= c.n {
		// Another writer got there first: bump the stored version.
		cur, err := c.Store.Get(ctx, p, it.ID)
		if err != nil {
			return 0, err
		}
		c.Store.Put(p.Stream, store.Item{ID: cur.ID, Data: []byte(`{"id":"` + cur.ID + `","name":"theirs"}`)})
		return 0, store.ErrConflict
	}
	return c.Store.Replace(ctx, p, it)
}

func TestCall_UpdateRetriesConflicts(t *testing.T) {
	h := resource.MustNew(thingBinding(nil))
	for _, tt := range []struct {
		conflicts int
		wantCode  apierr.Code
	}{{0, 0}, {1, 0}, {3, 0}, {4, apierr.CodeConflict}} {
		st := &conflicting{Store: memory.New(), n: tt.conflicts}
		st.Store.Put("things", store.Item{ID: "t1", Data: []byte(`{"id":"t1","name":"mine"}`)})
		env := env{Store: st}
		res, err := serve(t, h, env, call.Request{Action: "patch", PK: "t1", Data: []byte(`{"name":"patched"}`)})
		if tt.wantCode == 0 {
			if err != nil || !strings.Contains(string(res.Data), `"patched"`) {
				t.Errorf("%d conflicts: got %s, %v; want the patch applied on retry", tt.conflicts, res.Data, err)
			}
			continue
		}
		if got := apierr.CodeOf(err); got != tt.wantCode {
			t.Errorf("%d conflicts: got code %d (%v), want %d", tt.conflicts, got, err, tt.wantCode)
		}
	}
}

func TestCreate_TakenIDs(t *testing.T) {
	h := resource.MustNew(thingBinding(func(b *resource.Binding[thing]) {
		b.NewID = func(time.Time) string { return "same" }
	}))
	env := env{Store: memory.New()}
	if _, err := serve(t, h, env, call.Request{Action: "create", Data: []byte(`{"name":"a"}`)}); err != nil {
		t.Fatal(err)
	}
	_, err := serve(t, h, env, call.Request{Action: "create", Data: []byte(`{"name":"b"}`)})
	e := apierr.AsError(err)
	if e == nil || e.Code() != apierr.CodeInvalid || len(e.Fields()) != 1 || e.Fields()[0].Messages[0] != "thing with this id already exists." {
		t.Errorf("got %v, want 400 {id: thing with this id already exists.}", err)
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

type gadget struct {
	ID    string
	Name  string
	Size  int
	Price float64
	On    bool
	Tags  json.RawMessage
}

func TestNew_OptionsFitTheKind(t *testing.T) {
	name := func(opts ...resource.Option) resource.Field[gadget] {
		return resource.String("name", func(g *gadget) *string { return &g.Name }, opts...)
	}
	size := func(opts ...resource.Option) resource.Field[gadget] {
		return resource.Int("size", func(g *gadget) *int { return &g.Size }, opts...)
	}
	price := func(opts ...resource.Option) resource.Field[gadget] {
		return resource.Float("price", func(g *gadget) *float64 { return &g.Price }, opts...)
	}
	on := func(opts ...resource.Option) resource.Field[gadget] {
		return resource.Bool("on", func(g *gadget) *bool { return &g.On }, opts...)
	}
	tags := func(opts ...resource.Option) resource.Field[gadget] {
		return resource.JSON("tags", func(g *gadget) *json.RawMessage { return &g.Tags }, opts...)
	}
	for _, tt := range []struct {
		field resource.Field[gadget]
		want  string // "" for no error
	}{
		{name(resource.MaxLength(3), resource.MinLength(1), resource.AllowBlank(), resource.NoTrim(), resource.Choices("a")), ""},
		{size(resource.MinValue(1), resource.MaxValue(9), resource.Choices(1, 2, 3)), ""},
		{price(resource.MinValue(0.5)), ""},
		{tags(resource.AllowNull()), ""},
		{size(resource.MaxLength(5)), "MaxLength does not apply to a field of kind Int"},
		{price(resource.Choices("1")), "Choices does not apply to a field of kind Float"},
		{on(resource.AllowNull()), "AllowNull does not apply to a field of kind Bool"},
		{name(resource.MinValue(1)), "MinValue does not apply to a field of kind String"},
		{tags(resource.NoTrim()), "NoTrim does not apply to a field of kind JSON"},
		{size(resource.Default("many")), `Default "many": A valid integer is required.`},
		{size(resource.Default(3), resource.Required()), "is Required and has a Default"},
		{size(resource.Default(struct{}{})), "the Default has no JSON form"},
		{size(resource.Default(0), resource.MinValue(1)), "Ensure this value is greater than or equal to 1."},
		{on(resource.Default(true)), ""},
	} {
		_, err := resource.New(resource.Binding[gadget]{
			Stream: "gadgets", Model: "app.gadget", ID: func(g *gadget) *string { return &g.ID },
			Fields: []resource.Field[gadget]{tt.field},
		})
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("field %s: got %v, want no error", tt.field.Name(), err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("field %s: got %v, want an error containing %q", tt.field.Name(), err, tt.want)
		}
	}
}

func TestDefault_AppliesOnCreateAndUpdate(t *testing.T) {
	h := resource.MustNew(resource.Binding[gadget]{
		Stream: "gadgets", Model: "app.gadget", ID: func(g *gadget) *string { return &g.ID },
		NewID: func(time.Time) string { return "g1" },
		Fields: []resource.Field[gadget]{
			resource.String("name", func(g *gadget) *string { return &g.Name }),
			resource.Int("size", func(g *gadget) *int { return &g.Size }, resource.Default(7), resource.Choices(1, 7)),
		},
	})
	e := env{Store: memory.New()}
	for _, tt := range []struct {
		req  call.Request
		want string
	}{
		{call.Request{Action: "create", Data: []byte(`{"name":"a"}`)}, `{"id":"g1","name":"a","size":7}`},
		{call.Request{Action: "patch", PK: "g1", Data: []byte(`{"size":1}`)}, `{"id":"g1","name":"a","size":1}`},
		{call.Request{Action: "patch", PK: "g1", Data: []byte(`{"name":"b"}`)}, `{"id":"g1","name":"b","size":1}`},
		{call.Request{Action: "update", PK: "g1", Data: []byte(`{"name":"c"}`)}, `{"id":"g1","name":"c","size":7}`},
	} {
		res, err := serve(t, h, e, tt.req)
		if err != nil || string(res.Data) != tt.want {
			t.Errorf("%s %s: got %s, %v; want %s", tt.req.Action, tt.req.Data, res.Data, err, tt.want)
		}
	}
	_, err := serve(t, h, e, call.Request{Action: "patch", PK: "g1", Data: []byte(`{"size":2}`)})
	if e := apierr.AsError(err); e == nil || len(e.Fields()) != 1 || e.Fields()[0].Messages[0] != `"2" is not a valid choice.` {
		t.Errorf("size 2: got %v, want 400 \"2\" is not a valid choice.", err)
	}
}

// TestImages_ReadWhenNeeded: a change's images are decoded only when a
// check or a push needs them. Without scope, object permissions or a
// filter every image is visible unread, so an unreadable old image does
// not stop an update's push; with an object permission both are read,
// and the unreadable one is the change's error.
func TestImages_ReadWhenNeeded(t *testing.T) {
	bad, good := []byte(`{"id": 7`), []byte(`{"id":"t1","name":"after"}`)
	plain := resource.MustNew(thingBinding(nil))
	im, err := plain.Images(bad, good)
	if err != nil {
		t.Fatal(err)
	}
	if got := im.Visible(resource.User{}, ""); got != [2]bool{true, true} {
		t.Errorf("visible = %v, want both", got)
	}
	if w := im.Wire(1); !strings.Contains(string(w), `"after"`) {
		t.Errorf("wire of the new image = %s", w)
	}
	if err := im.Err(); err != nil {
		t.Errorf("err = %v, want none: the old image was never needed", err)
	}
	if w := im.Wire(0); w != nil || im.Err() == nil {
		t.Errorf("wire of the unreadable image = %s, err %v: want nil and an error", w, im.Err())
	}

	checked := resource.MustNew(thingBinding(func(b *resource.Binding[thing]) {
		b.ObjectPermissions = []resource.ObjectPermission[thing]{func(_ resource.User, _ string, o *thing) bool { return o.Name != "secret" }}
	}))
	im, _ = checked.Images(bad, good)
	if got := im.Visible(resource.User{}, ""); got != [2]bool{false, true} {
		t.Errorf("visible = %v, want only the new image", got)
	}
	if im.Err() == nil {
		t.Error("no error for the unreadable image the permission had to read")
	}
}
