package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wsbind/wsbind/bindings"
	"github.com/wsbind/wsbind/local/web"
	"github.com/wsbind/wsbind/resource"
)

func get(t *testing.T, h http.Handler, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandler_Bindings(t *testing.T) {
	reg := bindings.Registry(resource.Settings{})
	res := get(t, web.Handler(reg), http.MethodGet, "/bindings.json")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status: got %d, want 200", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	var got web.Bindings
	if err := json.Unmarshal([]byte(body(t, res)), &got); err != nil {
		t.Fatal(err)
	}
	want := reg.Streams()
	if len(got.Streams) != len(want) {
		t.Fatalf("streams: got %d, want %d (%v)", len(got.Streams), len(want), want)
	}
	for i, s := range got.Streams {
		h := reg.Lookup(want[i])
		if s.Stream != h.Stream() || s.Model != h.Model() {
			t.Errorf("stream %d: got %s (%s), want %s (%s)", i, s.Stream, s.Model, h.Stream(), h.Model())
		}
		var wantActions []web.Action
		for _, a := range h.Actions() {
			wantActions = append(wantActions, web.Action{Name: a.Name, Detail: a.Detail, Custom: a.Custom})
		}
		if !slices.Equal(s.Actions, wantActions) {
			t.Errorf("%s actions: got %+v, want %+v", s.Stream, s.Actions, wantActions)
		}
	}
}

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
	got := web.Describe(reg)
	names := func(s web.Stream) string {
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

func TestHandler_Files(t *testing.T) {
	h := web.Handler(bindings.Registry(resource.Settings{}))
	page := get(t, h, http.MethodGet, "/")
	if page.StatusCode != http.StatusOK || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: got %d %q, want 200 text/html", page.StatusCode, page.Header.Get("Content-Type"))
	}
	if page.Header.Get("Content-Security-Policy") == "" {
		t.Error("GET /: no Content-Security-Policy")
	}
	html := body(t, page)
	// Every file the page references is served, with its type.
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(html, -1)
	if len(refs) < 2 {
		t.Fatalf("page references %d files, want the script and the style sheet", len(refs))
	}
	types := map[string]string{".js": "text/javascript", ".css": "text/css"}
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "data:") {
			continue
		}
		if strings.Contains(ref, "://") || strings.HasPrefix(ref, "//") {
			t.Errorf("page loads %s from elsewhere; the machine may be offline", ref)
			continue
		}
		res := get(t, h, http.MethodGet, "/"+ref)
		want, ok := types[path.Ext(ref)]
		if !ok {
			t.Errorf("page references %s, of no type this test knows", ref)
			continue
		}
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), want) {
			t.Errorf("GET /%s: got %d %q, want 200 %q", ref, res.StatusCode, res.Header.Get("Content-Type"), want)
		}
	}
}

func TestHandler_Refusals(t *testing.T) {
	h := web.Handler(bindings.Registry(resource.Settings{}))
	tests := []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/static/debugger.js", http.StatusNotFound},
		{http.MethodGet, "/index.html", http.StatusNotFound},
		{http.MethodGet, "/nope", http.StatusNotFound},
		{http.MethodPost, "/", http.StatusMethodNotAllowed},
		{http.MethodPut, "/bindings.json", http.StatusMethodNotAllowed},
		{http.MethodHead, "/bindings.json", http.StatusOK},
	}
	for _, tt := range tests {
		if got := get(t, h, tt.method, tt.path).StatusCode; got != tt.status {
			t.Errorf("%s %s: got %d, want %d", tt.method, tt.path, got, tt.status)
		}
	}
}
