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
	"github.com/wsbind/wsbind/internal/emulated/web"
	"github.com/wsbind/wsbind/internal/sandbox/guest"
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
	res := get(t, web.Handler(guest.DescribeEntry(reg)(nil)), http.MethodGet, "/bindings.json")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status: got %d, want 200", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	var got guest.Bindings
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
		var wantActions []guest.Action
		for _, a := range h.Actions() {
			wantActions = append(wantActions, guest.Action{Name: a.Name, Detail: a.Detail, Custom: a.Custom})
		}
		if !slices.Equal(s.Actions, wantActions) {
			t.Errorf("%s actions: got %+v, want %+v", s.Stream, s.Actions, wantActions)
		}
	}
}

// TestHandler_AsyncAPI: the AsyncAPI document of the bindings the page
// was given, its emulator server the host the request named.
func TestHandler_AsyncAPI(t *testing.T) {
	h := web.Handler(guest.DescribeEntry(bindings.Registry(resource.Settings{}))(nil))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/asyncapi.json", nil)
	req.Host = "127.0.0.1:9999"
	h.ServeHTTP(rec, req)
	res := rec.Result()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /asyncapi.json: %d %q, want 200 application/json", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var doc struct {
		AsyncAPI string `json:"asyncapi"`
		Servers  map[string]struct {
			Host string `json:"host"`
		} `json:"servers"`
		Operations map[string]json.RawMessage `json:"operations"`
	}
	if err := json.Unmarshal([]byte(body(t, res)), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.AsyncAPI != "3.0.0" || doc.Servers["emulator"].Host != "127.0.0.1:9999" {
		t.Errorf("asyncapi %q, emulator server %q; want 3.0.0 and the request's host", doc.AsyncAPI, doc.Servers["emulator"].Host)
	}
	for _, op := range []string{"questions.create", "notes.pin", "notes.push"} {
		if doc.Operations[op] == nil {
			t.Errorf("no operation %s", op)
		}
	}
}

func TestHandler_Files(t *testing.T) {
	h := web.Handler(guest.DescribeEntry(bindings.Registry(resource.Settings{}))(nil))
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
	types := map[string]string{".js": "text/javascript", ".css": "text/css", ".json": "application/json"}
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

// TestHandler_Modules: the page's script is a module, and every module it
// imports, and they import, is served from the page's own origin as
// JavaScript; among them the TypeScript client's.
func TestHandler_Modules(t *testing.T) {
	h := web.Handler(guest.DescribeEntry(bindings.Registry(resource.Settings{}))(nil))
	if html := body(t, get(t, h, http.MethodGet, "/")); !strings.Contains(html, `<script type="module" src="debugger.js">`) {
		t.Fatal(`the page does not load debugger.js as a module`)
	}
	specifier := regexp.MustCompile(`(?m)^(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"`)
	seen := map[string]bool{"/debugger.js": true}
	for queue := []string{"/debugger.js"}; len(queue) > 0; queue = queue[1:] {
		mod := queue[0]
		res := get(t, h, http.MethodGet, mod)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") {
			t.Errorf("GET %s: got %d %q, want 200 text/javascript", mod, res.StatusCode, res.Header.Get("Content-Type"))
			continue
		}
		for _, m := range specifier.FindAllStringSubmatch(body(t, res), -1) {
			if !strings.HasPrefix(m[1], "./") && !strings.HasPrefix(m[1], "../") {
				t.Errorf("%s imports %q: not a path on the page's origin", mod, m[1])
				continue
			}
			dep := path.Join(path.Dir(mod), m[1])
			if !seen[dep] {
				seen[dep] = true
				queue = append(queue, dep)
			}
		}
	}
	for _, want := range []string{"/client/index.js", "/client/client.js", "/client/subscription.js"} {
		if !seen[want] {
			t.Errorf("the page's modules do not include %s: %v", want, seen)
		}
	}
}

func TestHandler_Refusals(t *testing.T) {
	h := web.Handler(guest.DescribeEntry(bindings.Registry(resource.Settings{}))(nil))
	tests := []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/static/debugger.js", http.StatusNotFound},
		{http.MethodGet, "/index.html", http.StatusNotFound},
		{http.MethodGet, "/client/", http.StatusNotFound},
		{http.MethodGet, "/client", http.StatusNotFound},
		{http.MethodGet, "/client/nope.js", http.StatusNotFound},
		{http.MethodGet, "/client/../debugger.js", http.StatusNotFound},
		{http.MethodGet, "/static/client/index.js", http.StatusNotFound},
		{http.MethodGet, "/client/index.js", http.StatusOK},
		{http.MethodPost, "/client/index.js", http.StatusMethodNotAllowed},
		{http.MethodGet, "/nope", http.StatusNotFound},
		{http.MethodPost, "/", http.StatusMethodNotAllowed},
		{http.MethodPut, "/bindings.json", http.StatusMethodNotAllowed},
		{http.MethodHead, "/bindings.json", http.StatusOK},
		{http.MethodPost, "/asyncapi.json", http.StatusMethodNotAllowed},
		{http.MethodHead, "/asyncapi.json", http.StatusOK},
	}
	for _, tt := range tests {
		if got := get(t, h, tt.method, tt.path).StatusCode; got != tt.status {
			t.Errorf("%s %s: got %d, want %d", tt.method, tt.path, got, tt.status)
		}
	}
}
