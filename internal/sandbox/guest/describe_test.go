package guest_test

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/wsbind/wsbind/internal/sandbox/guest"
	"github.com/wsbind/wsbind/internal/testkit/protocoltest/testbindings"
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
	n, m := 0, 7
	lo, hi := -1.5, 1e300
	for _, d := range []guest.Bindings{
		{Streams: []guest.Stream{}},
		{Streams: []guest.Stream{
			{Stream: "a\"b<c>", Model: "m\u2028\\", PageSize: 3, Fields: []guest.Field{
				{Name: "id", Type: "string", PK: true, ReadOnly: true},
				{Name: "q\"", Type: "string", Required: true, WriteOnly: true, MaxLength: &m, MinLength: &n,
					Enum: []json.RawMessage{json.RawMessage(`"a"`), json.RawMessage(`"\u003c"`)}, Default: json.RawMessage(`"a"`), AllowBlank: true},
				{Name: "n", Type: "integer", Minimum: &lo, Maximum: &hi, Enum: []json.RawMessage{json.RawMessage(`1`)}, Default: json.RawMessage(`1`)},
				{Name: "j", Type: "json", Nullable: true, Default: json.RawMessage(`{"a":[1,null]}`)},
			}, Actions: []guest.Action{{Name: "x", Detail: true}, {Name: "é", Custom: true}}},
			{Stream: "s", Model: "t", Fields: []guest.Field{}, Actions: []guest.Action{}},
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

// TestDescribe_NotFinite: a bound with no JSON form (an infinity, NaN) is
// left out rather than making the document invalid.
func TestDescribe_NotFinite(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	d := guest.Bindings{Streams: []guest.Stream{{Stream: "s", Model: "a.b", Fields: []guest.Field{
		{Name: "x", Type: "number", Minimum: &nan, Maximum: &inf},
	}, Actions: []guest.Action{}}}}
	got := d.AppendJSON(nil)
	want := `{"streams":[{"stream":"s","model":"a.b","actions":[],"page_size":0,"fields":[{"name":"x","type":"number"}]}]}`
	if string(got) != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

// TestDescribe_Fields: the describe export's fields of the application's
// bindings (questions, notes) and the test bindings, every kind and
// option among them, exactly as a tool reads them.
func TestDescribe_Fields(t *testing.T) {
	out := guest.DescribeEntry(testbindings.Registry())(nil)
	var doc struct {
		Streams []struct {
			Stream   string          `json:"stream"`
			PageSize int             `json:"page_size"`
			Fields   json.RawMessage `json:"fields"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("describe wrote %s: %v", out, err)
	}
	want := map[string]struct {
		pageSize int
		fields   string
	}{
		"questions": {25, `[
			{"name":"id","type":"string","pk":true,"read_only":true},
			{"name":"question_text","type":"string","required":true,"max_length":200},
			{"name":"pub_date","type":"date-time","read_only":true},
			{"name":"published","type":"boolean","read_only":true}]`},
		"notes": {25, `[
			{"name":"id","type":"string","pk":true,"read_only":true},
			{"name":"owner","type":"string","read_only":true},
			{"name":"text","type":"string","required":true},
			{"name":"pinned","type":"boolean","default":false}]`},
		"widgets": {2, `[
			{"name":"id","type":"string","pk":true,"read_only":true},
			{"name":"name","type":"string","required":true,"max_length":10,"min_length":2},
			{"name":"code","type":"string","enum":["a","b"]},
			{"name":"count","type":"integer","minimum":0,"maximum":100},
			{"name":"ratio","type":"number","maximum":1.5},
			{"name":"active","type":"boolean"},
			{"name":"when","type":"date-time"},
			{"name":"secret","type":"string","write_only":true},
			{"name":"meta","type":"json","nullable":true},
			{"name":"note","type":"string","allow_blank":true}]`},
		"labels": {25, `[
			{"name":"id","type":"string","pk":true,"read_only":true},
			{"name":"text","type":"string"}]`},
		"vault": {25, `[
			{"name":"id","type":"string","pk":true,"read_only":true},
			{"name":"text","type":"string"}]`},
	}
	if len(doc.Streams) != len(want) {
		t.Errorf("got %d streams, want %d", len(doc.Streams), len(want))
	}
	for _, s := range doc.Streams {
		w, ok := want[s.Stream]
		if !ok {
			t.Errorf("unexpected stream %q", s.Stream)
			continue
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(w.fields)); err != nil {
			t.Fatal(err)
		}
		if string(s.Fields) != compact.String() || s.PageSize != w.pageSize {
			t.Errorf("%s: page_size %d, fields\n%s\nwant page_size %d, fields\n%s", s.Stream, s.PageSize, s.Fields, w.pageSize, compact.String())
		}
	}
}

// TestDescribe_Defaults: a field's default is described as it is stored
// (trimmed, converted to the field's type), choices of an integer field
// as numbers.
func TestDescribe_Defaults(t *testing.T) {
	type thing struct {
		ID, S string
		N     int
		F     float64
		J     json.RawMessage
	}
	reg := resource.NewRegistry(resource.Settings{PageSize: 7}).MustRegister(resource.MustNew(resource.Binding[thing]{
		Stream: "things", Model: "app.thing", ID: func(x *thing) *string { return &x.ID },
		Fields: []resource.Field[thing]{
			resource.String("s", func(x *thing) *string { return &x.S }, resource.Default("  padded "), resource.Choices("padded", "x")),
			resource.Int("n", func(x *thing) *int { return &x.N }, resource.Default("12"), resource.Choices(12, 13)),
			resource.Float("f", func(x *thing) *float64 { return &x.F }, resource.Default(2), resource.MinValue(-0.5)),
			resource.JSON("j", func(x *thing) *json.RawMessage { return &x.J }, resource.Default(json.RawMessage(`{ "a" : [1, 2] }`))),
		},
	}))
	got := string(guest.Describe(reg).AppendJSON(nil))
	want := `{"streams":[{"stream":"things","model":"app.thing","actions":[` +
		`{"name":"create","detail":false,"custom":false},{"name":"retrieve","detail":true,"custom":false},` +
		`{"name":"update","detail":true,"custom":false},{"name":"patch","detail":true,"custom":false},` +
		`{"name":"delete","detail":true,"custom":false},{"name":"list","detail":false,"custom":false},` +
		`{"name":"subscribe","detail":false,"custom":false},{"name":"unsubscribe","detail":false,"custom":false}],` +
		`"page_size":7,"fields":[` +
		`{"name":"id","type":"string","pk":true,"read_only":true},` +
		`{"name":"s","type":"string","enum":["padded","x"],"default":"padded"},` +
		`{"name":"n","type":"integer","enum":[12,13],"default":12},` +
		`{"name":"f","type":"number","minimum":-0.5,"default":2},` +
		`{"name":"j","type":"json","default":{"a":[1,2]}}]}]}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
