package guest_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/wsbind/wsbind/internal/sandbox/guest"
	"github.com/wsbind/wsbind/resource"
)

// TestDescribe_Kinds checks the document against bindings declared here:
// a read-only binding offers only retrieve and list, and custom actions
// keep their kind.
func TestDescribe_Kinds(t *testing.T) {
	type thing struct{ ID string }
	id := func(x *thing) *string { return &x.ID }
	run := func(*resource.Call[thing]) (any, int, error) { return nil, 200, nil }
	reg := resource.NewRegistry(resource.Settings{}).MustRegister(
		resource.MustNew(resource.Binding[thing]{Stream: "b-full", Model: "app.full", ID: id,
			Actions: []resource.Action[thing]{resource.DetailAction("poke", run), resource.ListAction("count", run)}}),
		resource.MustNew(resource.Binding[thing]{Stream: "a-ro", Model: "app.ro", ID: id, ReadOnly: true}),
	)
	got := guest.Describe(reg)
	names := func(s guest.Stream) string {
		var out []string
		for _, a := range s.Actions {
			kind := "list"
			if a.Detail {
				kind = "detail"
			}
			if a.Custom {
				kind += "+custom"
			}
			out = append(out, a.Name+":"+kind)
		}
		return strings.Join(out, " ")
	}
	tests := []struct{ stream, model, actions string }{
		{"a-ro", "app.ro", "retrieve:detail list:list"},
		{"b-full", "app.full", "create:list retrieve:detail update:detail patch:detail delete:detail list:list subscribe:list unsubscribe:list poke:detail+custom count:list+custom"},
	}
	if len(got.Streams) != len(tests) {
		t.Fatalf("got %d streams, want %d", len(got.Streams), len(tests))
	}
	for i, tt := range tests {
		s := got.Streams[i]
		if s.Stream != tt.stream || s.Model != tt.model || names(s) != tt.actions {
			t.Errorf("stream %d: got %s %s [%s], want %s %s [%s]", i, s.Stream, s.Model, names(s), tt.stream, tt.model, tt.actions)
		}
	}
}

// TestDescribe_JSON: the hand-written JSON reads back, through
// encoding/json, as the document it was written from, escapes included.
func TestDescribe_JSON(t *testing.T) {
	for _, d := range []guest.Bindings{
		{Streams: []guest.Stream{}},
		{Streams: []guest.Stream{
			{Stream: "a\"b<c>", Model: "m\u2028\\", Actions: []guest.Action{{Name: "x", Detail: true}, {Name: "é", Custom: true}}},
			{Stream: "s", Model: "t", Actions: []guest.Action{}},
		}},
	} {
		got := d.AppendJSON(nil)
		var back guest.Bindings
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("AppendJSON wrote %s: %v", got, err)
		}
		if !reflect.DeepEqual(back, d) {
			t.Errorf("AppendJSON: %s reads back as %+v, want %+v", got, back, d)
		}
	}
}
