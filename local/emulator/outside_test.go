package emulator_test

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/wsbind/wsbind/internal/testkit/wasmbuild"
	"github.com/wsbind/wsbind/local/emulator"
)

// outsideApp is an application in a module of its own, written against
// wsbind's public packages only (resource, function): one binding and
// the three guests' mains.
var outsideApp = map[string]string{
	"tasks/tasks.go": `package tasks

import "github.com/wsbind/wsbind/resource"

type Task struct {
	ID    string
	Title string
	Done  bool
}

var Binding = resource.MustNew(resource.Binding[Task]{
	Stream: "tasks",
	Model:  "todo.task",
	ID:     func(t *Task) *string { return &t.ID },
	Fields: []resource.Field[Task]{
		resource.String("title", func(t *Task) *string { return &t.Title }, resource.Required(), resource.MaxLength(100)),
		resource.Bool("done", func(t *Task) *bool { return &t.Done }),
	},
	Permissions: []resource.Permission{resource.AllowAny},
})

func Registry(s resource.Settings) *resource.Registry {
	return resource.NewRegistry(s).MustRegister(Binding)
}
`,
	"functions/route/main.go": `package main

import (
	"example.com/todo/tasks"
	"github.com/wsbind/wsbind/function"
)

var route = function.Route(tasks.Registry)

//go:wasmexport wsbind_route
func wsbindRoute(ptr, n uint32) uint64 { return route.Serve(ptr, n) }

func main() {}
`,
	"functions/streamfanout/main.go": `package main

import (
	"example.com/todo/tasks"
	"github.com/wsbind/wsbind/function"
)

var fanout = function.Fanout(tasks.Registry)

//go:wasmexport wsbind_fanout
func wsbindFanout(ptr, n uint32) uint64 { return fanout.Serve(ptr, n) }

func main() {}
`,
	"functions/connect/main.go": `package main

import "github.com/wsbind/wsbind/function"

var connect = function.Connect()

//go:wasmexport wsbind_connect
func wsbindConnect(ptr, n uint32) uint64 { return connect.Serve(ptr, n) }

func main() {}
`,
}

// writeOutsideApp writes the application as module example.com/todo in
// a directory outside this module, requiring this checkout (replace).
func writeOutsideApp(t *testing.T, app map[string]string) string {
	t.Helper()
	files := maps.Clone(app)
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(here), "..", "..")
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files["go.mod"] = "module example.com/todo\n\ngo 1.26\n\nrequire github.com/wsbind/wsbind v0.0.0\n\nreplace github.com/wsbind/wsbind => " + root + "\n"
	files["go.sum"] = string(sum)
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// buildGuest builds one of the app's guests the way wsbind's own are
// built, returning the output of a failed build.
func buildGuest(dir, name, out string) ([]byte, error) {
	args := append([]string{"build"}, wasmbuild.Flags...)
	cmd := exec.Command("go", append(args, "-o", out, "./functions/"+name)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	return stderr.Bytes(), err
}

// TestEmulator_OutsideModule: an application in its own module, using
// only public packages, builds its three guests, and the emulator serves
// them: a create answered and pushed on the application's own stream,
// and the debugger page offering its binding, learnt from the guest.
// Reaching into wsbind's internal packages is refused by the go tool.
func TestEmulator_OutsideModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an outside module's guests")
	}
	dir := writeOutsideApp(t, outsideApp)
	guests := t.TempDir()
	for _, name := range []string{"connect", "route", "streamfanout"} {
		if out, err := buildGuest(dir, name, filepath.Join(guests, name+".wasm")); err != nil {
			t.Fatalf("build %s of the outside app: %v\n%s", name, err, out)
		}
	}

	em := start(t, func(c *emulator.Config) { c.GuestDir = guests })
	alice := mustDial(t, em, "")
	watcher := mustDial(t, em, "")
	wantStatus(t, watcher.send("tasks", `{"action":"subscribe","data":{"action":"create"}}`), 200)
	created := alice.send("tasks", `{"action":"create","data":{"title":"Write the docs"}}`)
	wantStatus(t, created, 201)
	pk, _ := dataOf(t, created)["id"].(string)
	if pk == "" || created.Payload.Version != 1 {
		t.Fatalf("create: want an id and version 1: %s", created.raw)
	}
	if p, err := watcher.push("create", pk); err != nil {
		t.Fatalf("create push: %v", err)
	} else if dataOf(t, p)["title"] != "Write the docs" || p.Payload.Model != "todo.task" {
		t.Errorf("create push: %s", p.raw)
	}
	// This repository's own bindings are not in these guests.
	if f := alice.send("questions", `{"action":"list"}`); f.Payload.Status != 400 || !strings.Contains(f.raw, "Invalid Stream") {
		t.Errorf("questions in the outside app's guests: %s, want 400 Invalid Stream", f.raw)
	}

	// The debugger page offers what the guests serve: the host learnt it
	// from the route guest (wsbind_describe), not from linked code.
	resp, err := http.Get(em.DebuggerURL() + "bindings.json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `{"streams":[{"stream":"tasks","model":"todo.task","actions":[`
	if resp.StatusCode != 200 || !strings.HasPrefix(string(b), want) || strings.Contains(string(b), "questions") {
		t.Errorf("bindings.json: %d %s, want the tasks binding alone", resp.StatusCode, b)
	}
	resp, err = http.Get(em.DebuggerURL() + "asyncapi.json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"tasks.create"`) || strings.Contains(string(b), "questions") {
		t.Errorf("asyncapi.json: %d %.300s, want the tasks binding alone", resp.StatusCode, b)
	}

	// The internal packages stay internal.
	files := maps.Clone(outsideApp)
	files["functions/route/main.go"] = strings.Replace(files["functions/route/main.go"],
		`"github.com/wsbind/wsbind/function"`, `"github.com/wsbind/wsbind/function"
	_ "github.com/wsbind/wsbind/internal/sandbox/guest"`, 1)
	dir = writeOutsideApp(t, files)
	out, err := buildGuest(dir, "route", filepath.Join(t.TempDir(), "route.wasm"))
	if err == nil || !strings.Contains(string(out), "use of internal package github.com/wsbind/wsbind/internal/sandbox/guest not allowed") {
		t.Errorf("importing internal/sandbox/guest from outside: err %v, output %s; want the go tool's refusal", err, out)
	}
}
