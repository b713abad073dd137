package asyncapi_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/wsbind/wsbind/bindings"
	"github.com/wsbind/wsbind/internal/emulated/asyncapi"
	"github.com/wsbind/wsbind/internal/sandbox/guest"
	"github.com/wsbind/wsbind/internal/testkit/protocoltest/testbindings"
	"github.com/wsbind/wsbind/resource"
)

var update = flag.Bool("update", false, "rewrite docs/asyncapi.json")

// doc is a generated document, read back as plain JSON.
type doc map[string]any

func generate(t *testing.T, b guest.Bindings, o asyncapi.Options) (doc, []byte) {
	t.Helper()
	out, err := asyncapi.Document(b, o)
	if err != nil {
		t.Fatal(err)
	}
	var d doc
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatalf("Document wrote invalid JSON: %v", err)
	}
	return d, out
}

// at walks a path of object keys ("components", "schemas", ...).
func (d doc) at(t *testing.T, path ...string) any {
	t.Helper()
	var v any = map[string]any(d)
	for i, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s is not an object", strings.Join(path[:i], "."))
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("no %s", strings.Join(path[:i+1], "."))
		}
	}
	return v
}

func (d doc) has(path ...string) bool {
	var v any = map[string]any(d)
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = m[k]; !ok {
			return false
		}
	}
	return true
}

func keys(v any) []string {
	m, _ := v.(map[string]any)
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// resolve follows a local reference.
func (d doc) resolve(t *testing.T, ref string) any {
	t.Helper()
	if !strings.HasPrefix(ref, "#/") {
		t.Fatalf("reference %q is not local", ref)
	}
	return d.at(t, strings.Split(ref[2:], "/")...)
}

// refs lists every "$ref" in v.
func refs(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" {
				*out = append(*out, s)
			}
			refs(x, out)
		}
	case []any:
		for _, x := range v {
			refs(x, out)
		}
	}
}

// TestDocument_Structure checks the document of the test bindings (every
// field kind and option, a read-only binding, custom actions) against
// their declarations.
func TestDocument_Structure(t *testing.T) {
	desc := guest.Describe(testbindings.Registry())
	d, _ := generate(t, desc, asyncapi.Options{Title: "t", Version: "2.0.0", Emulator: "127.0.0.1:1234"})

	if d["asyncapi"] != "3.0.0" || d.at(t, "info", "title") != "t" || d.at(t, "info", "version") != "2.0.0" {
		t.Errorf("header: %v %v", d["asyncapi"], d["info"])
	}
	if got := d.at(t, "servers", "emulator", "host"); got != "127.0.0.1:1234" {
		t.Errorf("emulator server host %v", got)
	}
	if got := keys(d["channels"]); !slices.Equal(got, []string{"websocket"}) {
		t.Fatalf("channels %v, want the one WebSocket", got)
	}
	if got := d.at(t, "channels", "websocket", "address"); got != "/" {
		t.Errorf("channel address %v", got)
	}

	// Every reference resolves; operations name messages of the channel.
	var all []string
	refs(map[string]any(d), &all)
	for _, r := range all {
		d.resolve(t, r)
	}

	// One send operation per stream and action, its request and reply
	// in the channel; a receive operation per stream that subscribes.
	for _, s := range desc.Streams {
		for _, a := range s.Actions {
			op := s.Stream + "." + a.Name
			if d.at(t, "operations", op, "action") != "send" {
				t.Errorf("%s: not a send operation", op)
			}
			msgs := d.at(t, "operations", op, "messages").([]any)
			reply := d.at(t, "operations", op, "reply", "messages").([]any)
			if len(msgs) != 1 || len(reply) != 1 ||
				msgs[0].(map[string]any)["$ref"] != "#/channels/websocket/messages/"+op+".request" ||
				reply[0].(map[string]any)["$ref"] != "#/channels/websocket/messages/"+op+".reply" {
				t.Errorf("%s: messages %v, reply %v", op, msgs, reply)
			}
			req := d.at(t, "components", "messages", op+".request", "payload", "properties").(map[string]any)
			if req["stream"].(map[string]any)["const"] != s.Stream {
				t.Errorf("%s request: stream %v", op, req["stream"])
			}
			if got := d.at(t, "components", "messages", op+".request", "payload", "properties", "payload", "properties", "action", "const"); got != a.Name {
				t.Errorf("%s request: action %v", op, got)
			}
		}
		push := d.has("operations", s.Stream+".push")
		if subscribes := slices.ContainsFunc(s.Actions, func(a guest.Action) bool { return a.Name == "subscribe" }); push != subscribes {
			t.Errorf("%s: push operation %v, subscribe offered %v", s.Stream, push, subscribes)
		}
	}
	if d.at(t, "operations", "widgets.push", "action") != "receive" {
		t.Error("widgets.push is not a receive operation")
	}

	// Objects: output has every readable field, input every writable one.
	schemas := func(name string) map[string]any { return d.at(t, "components", "schemas", name).(map[string]any) }
	props := func(name string) []string { return keys(schemas(name)["properties"]) }
	prop := func(name, field string) map[string]any {
		return d.at(t, "components", "schemas", name, "properties", field).(map[string]any)
	}
	if got, want := props("Widget"), sorted("id", "name", "code", "count", "ratio", "active", "when", "meta", "note"); !slices.Equal(got, want) {
		t.Errorf("Widget properties %v, want %v (no write-only secret)", got, want)
	}
	if got, want := strs(schemas("Widget")["required"]), []string{"id", "name", "code", "count", "ratio", "active", "when", "meta", "note"}; !slices.Equal(got, want) {
		t.Errorf("Widget required %v, want %v", got, want)
	}
	if got, want := props("WidgetInput"), sorted("name", "code", "count", "ratio", "active", "when", "secret", "meta", "note"); !slices.Equal(got, want) {
		t.Errorf("WidgetInput properties %v, want %v (no id)", got, want)
	}
	if got := strs(schemas("WidgetInput")["required"]); !slices.Equal(got, []string{"name"}) {
		t.Errorf("WidgetInput required %v, want [name]", got)
	}
	if _, ok := schemas("WidgetPatch")["required"]; ok {
		t.Error("WidgetPatch requires fields")
	}
	if got, want := props("WidgetFilter"), sorted("id", "name", "code", "count", "ratio", "active", "when", "note"); !slices.Equal(got, want) {
		t.Errorf("WidgetFilter properties %v, want %v (no secret, no JSON meta)", got, want)
	}
	for _, c := range []struct {
		schema, field string
		want          map[string]any
	}{
		{"Widget", "id", map[string]any{"type": "string", "description": "The object's id, chosen by the server.", "readOnly": true}},
		{"Widget", "code", map[string]any{"type": "string"}},
		{"Widget", "when", map[string]any{"type": []any{"string", "null"}, "format": "date-time", "description": "RFC 3339 in UTC; null while unset."}},
		{"Widget", "meta", map[string]any{"description": "Any JSON value."}},
		{"WidgetInput", "name", map[string]any{"type": "string", "maxLength": 10.0, "minLength": 2.0}},
		{"WidgetInput", "code", map[string]any{"type": "string", "enum": []any{"a", "b"}}},
		{"WidgetInput", "count", map[string]any{"type": "integer", "minimum": 0.0, "maximum": 100.0}},
		{"WidgetInput", "ratio", map[string]any{"type": "number", "maximum": 1.5}},
		{"WidgetInput", "active", map[string]any{"type": "boolean"}},
		{"WidgetInput", "when", map[string]any{"type": "string", "format": "date-time"}},
		{"WidgetInput", "secret", map[string]any{"type": "string", "minLength": 1.0}},
		{"WidgetInput", "meta", map[string]any{"description": "Any JSON value."}},
		{"WidgetInput", "note", map[string]any{"type": "string"}},
		{"Question", "pub_date", map[string]any{"type": []any{"string", "null"}, "format": "date-time", "description": "RFC 3339 in UTC; null while unset.", "readOnly": true}},
		{"QuestionInput", "question_text", map[string]any{"type": "string", "maxLength": 200.0, "minLength": 1.0}},
		{"NoteInput", "pinned", map[string]any{"type": "boolean", "default": false}},
		{"WidgetFilter", "count", map[string]any{"type": []any{"number", "null"}}},
	} {
		if got := prop(c.schema, c.field); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s.%s: %v, want %v", c.schema, c.field, got, c.want)
		}
	}
	if got := props("QuestionInput"); !slices.Equal(got, []string{"question_text"}) {
		t.Errorf("QuestionInput properties %v: read-only pub_date and published are output only", got)
	}
	if d.has("components", "schemas", "LabelInput") || d.has("components", "schemas", "LabelFilter") {
		t.Error("read-only labels has input or filter shapes")
	}
	if got := schemas("Question")["x-wsbind-stream"]; got != "questions" {
		t.Errorf("Question x-wsbind-stream %v", got)
	}

	// Requests and replies carry what the action takes and answers.
	payload := func(msg string) map[string]any {
		return d.at(t, "components", "messages", msg, "payload", "properties", "payload", "properties").(map[string]any)
	}
	for _, c := range []struct {
		msg  string
		want []string
	}{
		{"widgets.create.request", []string{"action", "request_id", "data", "idempotency_key"}},
		{"widgets.retrieve.request", []string{"action", "request_id", "pk", "data"}},
		{"widgets.update.request", []string{"action", "request_id", "pk", "data", "if_version", "idempotency_key"}},
		{"widgets.patch.request", []string{"action", "request_id", "pk", "data", "if_version", "idempotency_key"}},
		{"widgets.delete.request", []string{"action", "request_id", "pk", "data", "if_version", "idempotency_key"}},
		{"widgets.list.request", []string{"action", "request_id", "data"}},
		{"widgets.subscribe.request", []string{"action", "request_id", "pk", "data"}},
		{"widgets.shout.request", []string{"action", "request_id", "pk", "data", "if_version", "idempotency_key"}},
		{"widgets.names.request", []string{"action", "request_id", "data", "idempotency_key"}},
		{"widgets.create.reply", []string{"action", "data", "errors", "response_status", "request_id", "version", "pk", "truncated"}},
		{"widgets.retrieve.reply", []string{"action", "data", "errors", "response_status", "request_id", "version"}},
		{"widgets.list.reply", []string{"action", "data", "errors", "response_status", "request_id", "cursor"}},
		{"widgets.subscribe.reply", []string{"action", "data", "errors", "response_status", "request_id", "cursor"}},
		{"widgets.push", []string{"action", "data", "model", "pk", "version", "cursor", "replay", "truncated"}},
	} {
		if got := keys(payload(c.msg)); !slices.Equal(got, sorted(c.want...)) {
			t.Errorf("%s payload: %v, want %v", c.msg, got, sorted(c.want...))
		}
	}
	if got := payload("widgets.create.request")["data"]; !reflect.DeepEqual(got, map[string]any{"$ref": "#/components/schemas/WidgetInput"}) {
		t.Errorf("create data %v", got)
	}
	if got := payload("widgets.patch.request")["data"]; !reflect.DeepEqual(got, map[string]any{"$ref": "#/components/schemas/WidgetPatch"}) {
		t.Errorf("patch data %v", got)
	}
	if got := d.at(t, "components", "messages", "widgets.list.reply", "payload", "properties", "payload", "properties", "data", "anyOf").([]any)[0].(map[string]any)["maxItems"]; got != 2.0 {
		t.Errorf("widgets list page: maxItems %v, want the binding's page size 2", got)
	}
	sub := d.at(t, "components", "messages", "widgets.subscribe.request", "payload", "properties", "payload", "properties", "data", "properties")
	if got := keys(sub); !slices.Equal(got, sorted("action", "filter", "since", "pk")) {
		t.Errorf("subscribe data %v", got)
	}
	subReply := d.at(t, "components", "messages", "widgets.subscribe.reply", "payload", "properties", "payload", "properties", "data", "anyOf").([]any)[0]
	if got := keys(subReply.(map[string]any)["properties"]); !slices.Equal(got, sorted("action", "gap")) {
		t.Errorf("subscribe reply data %v", got)
	}
	if got := payload("widgets.push")["model"]; !reflect.DeepEqual(got, map[string]any{"const": "test.widget"}) {
		t.Errorf("push model %v", got)
	}
	if !d.has("operations", "invalid_frame") || !d.has("operations", "gateway_error") {
		t.Error("no operations for invalid frames and API Gateway's own messages")
	}
}

// TestDocument_Names: schema names come from the model, and stay unique
// and clear of TypeScript's own names; keys stay in AsyncAPI's alphabet.
func TestDocument_Names(t *testing.T) {
	type thing struct {
		ID   string
		Blob json.RawMessage
	}
	id := func(x *thing) *string { return &x.ID }
	run := func(*resource.Call[thing]) (any, int, error) { return nil, 200, nil }
	reg := resource.NewRegistry(resource.Settings{}).MustRegister(
		resource.MustNew(resource.Binding[thing]{Stream: "a-things", Model: "app.thing", ID: id,
			Fields:  []resource.Field[thing]{resource.JSON("blob", func(x *thing) *json.RawMessage { return &x.Blob })},
			Actions: []resource.Action[thing]{resource.ListAction("do it!", run), resource.ListAction("do it?", run)}}),
		resource.MustNew(resource.Binding[thing]{Stream: "b.things", Model: "other.thing", ID: id, ReadOnly: true}),
		resource.MustNew(resource.Binding[thing]{Stream: "maps", Model: "geo.map", ID: id, ReadOnly: true}),
		resource.MustNew(resource.Binding[thing]{Stream: "errs", Model: "x.errors", ID: id, ReadOnly: true}),
	)
	d, _ := generate(t, guest.Describe(reg), asyncapi.Options{})
	got := keys(d.at(t, "components", "schemas"))
	for _, want := range []string{"Thing", "ThingInput", "OtherThing", "GeoMap", "XErrors", "Errors"} {
		if !slices.Contains(got, want) {
			t.Errorf("schemas %v lack %s", got, want)
		}
	}
	for _, name := range []string{"Map", "Thing2"} {
		if slices.Contains(got, name) {
			t.Errorf("schemas %v hold %s", got, name)
		}
	}
	// A JSON field that is not AllowNull takes any value but null.
	if got := d.at(t, "components", "schemas", "ThingInput", "properties", "blob"); !reflect.DeepEqual(got, map[string]any{
		"description": "Any JSON value but null.", "not": map[string]any{"type": "null"}}) {
		t.Errorf("ThingInput.blob %v", got)
	}
	if d.at(t, "components", "schemas", "OtherThing", "x-wsbind-stream") != "b.things" {
		t.Error("OtherThing is not b.things'")
	}
	ops := keys(d.at(t, "operations"))
	for _, want := range []string{"a-things.do_it_", "a-things.do_it__2"} {
		if !slices.Contains(ops, want) {
			t.Errorf("operations %v lack %s", ops, want)
		}
	}
	if got := d.at(t, "operations", "a-things.do_it__2", "title"); got != "a-things do it?" {
		t.Errorf("second custom action's title %v", got)
	}
}

// TestDocument_Stable: the same bindings make the same bytes, and an
// application without bindings makes a document too.
func TestDocument_Stable(t *testing.T) {
	desc := guest.Describe(testbindings.Registry())
	_, a := generate(t, desc, asyncapi.Options{})
	_, b := generate(t, desc, asyncapi.Options{})
	if !bytes.Equal(a, b) {
		t.Error("two documents of the same bindings differ")
	}
	empty, err := asyncapi.FromDescribe([]byte(`{"streams":[]}`), asyncapi.Options{})
	if err != nil || !bytes.Contains(empty, []byte(`"asyncapi": "3.0.0"`)) {
		t.Errorf("no bindings: %v %.200s", err, empty)
	}
	if _, err := asyncapi.FromDescribe([]byte(`{"streams":`), asyncapi.Options{}); err == nil {
		t.Error("a broken description made a document")
	}
}

// TestDocument_UpToDate: docs/asyncapi.json is the document of this
// repository's bindings, as `make describe` writes it through the route
// guest. go test -update (or make describe) rewrites it.
func TestDocument_UpToDate(t *testing.T) {
	reg := bindings.Registry(guest.Settings(func(string) string { return "" }))
	_, want := generate(t, guest.Describe(reg), asyncapi.Options{Title: "github.com/wsbind/wsbind"})
	file := filepath.Join("..", "..", "..", "docs", "asyncapi.json")
	if *update {
		if err := os.WriteFile(file, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not the document of bindings/: run make describe (or go test ./internal/emulated/asyncapi -update) and commit it", file)
	}
}
