package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsbindBinary builds the command once per test binary.
var wsbindOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "wsbind-cmd-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "wsbind")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", errors.New(string(out))
	}
	return bin, nil
})

func wsbindBinary(t *testing.T) string {
	t.Helper()
	bin, err := wsbindOnce()
	if err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

// repoRoot is this checkout's root.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// runIn runs a command in dir and returns its combined output, failing
// the test if it fails.
func runIn(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// TestApp_InitTestRun is a new user's first hour: wsbind init makes an
// application module outside this checkout (requiring it by a replace),
// its own make test passes against the emulator, and make run serves it:
// over a WebSocket, one create is answered and pushed to a subscriber.
func TestApp_InitTestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("makes, tests and runs an application (~1 min)")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	bin := wsbindBinary(t)
	dir := filepath.Join(t.TempDir(), "myapp")
	out := runIn(t, ".", nil, bin, "init", "-replace", repoRoot(t), "-module", "example.com/myapp", dir)
	if !strings.Contains(out, "make run") {
		t.Errorf("init's output does not say what to do next:\n%s", out)
	}
	// Only public packages: the go tool refuses anything else from
	// outside the module, so building is the proof.
	mod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	if !strings.Contains(string(mod), "tool (") || !strings.Contains(string(mod), "replace github.com/wsbind/wsbind => "+repoRoot(t)) {
		t.Errorf("go.mod:\n%s\nwant the wsbind tools and the replace", mod)
	}

	out = runIn(t, dir, nil, "make", "test")
	if !strings.Contains(out, "ok  \texample.com/myapp/bindings/tasks") {
		t.Errorf("make test:\n%s\nwant the tasks test run and passed", out)
	}

	// wsbind describe: the AsyncAPI document of the application's own
	// bindings, asked of its own route guest.
	runIn(t, dir, nil, "go", "tool", "wsbind", "describe", "-o", "asyncapi.json")
	doc, err := os.ReadFile(filepath.Join(dir, "asyncapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	if s := string(doc); !strings.Contains(s, `"title": "example.com/myapp"`) || !strings.Contains(s, `"tasks.create"`) || strings.Contains(s, "questions") {
		t.Errorf("wsbind describe wrote:\n%.600s\nwant the tasks binding alone, titled by the module", doc)
	}

	smokeRun(t, dir)
}

// smokeRun starts make run in the application's directory, makes one
// create over a WebSocket and sees it pushed, then stops it with
// Ctrl-C.
func smokeRun(t *testing.T, dir string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	token := strings.TrimSpace(runIn(t, dir, nil, "make", "--no-print-directory", "-s", "token", "USER=alice"))

	cmd := exec.Command("make", "run")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "WSBIND_ADDR="+addr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		}
	}()
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var wsURL string
	var printed []string
	deadline := time.After(3 * time.Minute)
	for wsURL == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("make run ended before serving:\n%s\n%s", strings.Join(printed, "\n"), stderr.String())
			}
			printed = append(printed, l)
			if u, ok := strings.CutPrefix(strings.TrimSpace(l), "WebSocket API"); ok {
				wsURL = strings.TrimSpace(u)
			}
		case <-deadline:
			t.Fatalf("make run did not serve in 3 minutes:\n%s\n%s", strings.Join(printed, "\n"), stderr.String())
		}
	}
	if wsURL != "ws://"+addr+"/" {
		t.Errorf("make run serves %s, want ws://%s/", wsURL, addr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, wsURL+"?token="+token, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", wsURL, err)
	}
	defer conn.CloseNow()
	send := func(msg string) {
		if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	// Messages are routed concurrently, as on API Gateway: subscribe,
	// and create once the subscription is in place.
	send(`{"stream":"tasks","payload":{"action":"subscribe","data":{"action":"create"},"request_id":"s"}}`)
	if _, b, err := conn.Read(ctx); err != nil || !strings.Contains(string(b), `"response_status":200`) {
		t.Fatalf("subscribe: %s %v", b, err)
	}
	send(`{"stream":"tasks","payload":{"action":"create","data":{"title":"ship it"},"request_id":"c"}}`)
	type payload struct {
		Action    string          `json:"action"`
		Status    int             `json:"response_status"`
		RequestID string          `json:"request_id"`
		PK        string          `json:"pk"`
		Data      json.RawMessage `json:"data"`
	}
	var created, pushed *payload
	var frames []string
	for created == nil || pushed == nil {
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v; frames so far:\n%s", err, strings.Join(frames, "\n"))
		}
		frames = append(frames, string(b))
		var f struct {
			Stream  string  `json:"stream"`
			Payload payload `json:"payload"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("frame %s: %v", b, err)
		}
		p := f.Payload
		switch {
		case p.RequestID == "c":
			if p.Status != 201 {
				t.Fatalf("create: %s, want 201", b)
			}
			created = &p
		case p.Status == 0 && p.Action == "create":
			pushed = &p
		}
	}
	var obj struct{ ID, Owner, Title string }
	json.Unmarshal(created.Data, &obj)
	if obj.ID == "" || obj.Owner != "alice" || obj.Title != "ship it" {
		t.Errorf("create answered %s", created.Data)
	}
	if pushed.PK != obj.ID || !strings.Contains(string(pushed.Data), `"ship it"`) {
		t.Errorf("push %+v, want the task %s", pushed, obj.ID)
	}

	// Ctrl-C: make run stops cleanly.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	done := make(chan error, 1)
	go func() {
		for l := range lines {
			printed = append(printed, l)
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		stopped = true
		if err != nil && !strings.Contains(strings.Join(printed, "\n"), "stopping") {
			t.Errorf("make run after Ctrl-C: %v\n%s\n%s", err, strings.Join(printed, "\n"), stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("make run still running 30 s after Ctrl-C")
	}
}

// TestApp_Build makes an application's Lambda package with its own
// Makefile, for the architecture its samconfig.toml deploys, and shows a
// build for another architecture refused before anything is built.
func TestApp_Build(t *testing.T) {
	if testing.Short() {
		t.Skip("makes an application and its package (~1 min)")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	lambdaArch := map[string]string{"amd64": "x86_64", "arm64": "arm64"}[runtime.GOARCH]
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH]
	if lambdaArch == "" || runtime.GOOS != "linux" {
		t.Skipf("Lambda runs no %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	other := map[string]string{"x86_64": "arm64", "arm64": "x86_64"}[lambdaArch]
	bin := wsbindBinary(t)
	dir := filepath.Join(t.TempDir(), "app")
	runIn(t, ".", nil, bin, "init", "-replace", repoRoot(t), dir)
	// What sam deploy --guided writes: this machine's architecture.
	samconfig := "version = 0.1\n[default.deploy.parameters]\nstack_name = \"app\"\nparameter_overrides = \"Architecture=\\\"" + lambdaArch + "\\\" Engine=\\\"wasmtime\\\"\"\n"
	if err := os.WriteFile(filepath.Join(dir, "samconfig.toml"), []byte(samconfig), 0o644); err != nil {
		t.Fatal(err)
	}

	// A different -arch fails at once, in one line naming both.
	cmd := exec.Command("go", "tool", "wsbind", "build", "-arch", other)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("build -arch %s: %v, want status 1\n%s", other, err, out)
	}
	want := "wsbind build: -arch " + other + ", but samconfig.toml (parameter_overrides) deploys Architecture=" + lambdaArch
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], want) {
		t.Errorf("build -arch %s said:\n%s\nwant one line starting %q", other, out, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "build")); err == nil {
		t.Errorf("a refused build left build/ behind")
	}

	// make build: the whole package, for samconfig.toml's architecture.
	out2 := runIn(t, dir, nil, "make", "build")
	pkg := filepath.Join(dir, "build", "lambda")
	if !strings.Contains(out2, "for "+lambdaArch) {
		t.Errorf("make build:\n%s\nwant it to say it builds for %s", out2, lambdaArch)
	}
	f, err := elf.Open(filepath.Join(pkg, "bootstrap"))
	if err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, out2)
	}
	defer f.Close()
	if f.Machine != machine {
		t.Errorf("bootstrap for %v, want %v", f.Machine, machine)
	}
	for _, name := range []string{"connect", "route", "streamfanout"} {
		for _, p := range []string{name + ".wasm", name + ".cache", name + ".cwasm"} {
			if _, err := os.Stat(filepath.Join(pkg, p)); err != nil && strings.Contains(out2, "build: ") {
				t.Logf("%s: skipped, as the build said", p)
			} else if err != nil {
				t.Errorf("%s: %v, and the build said nothing was skipped", p, err)
			}
		}
	}
}

// TestHost_NoApplicationCode: the bootstrap and the wsbind command link
// no application: neither this repository's sample bindings nor the
// examples. What an application serves comes from its guests.
func TestHost_NoApplicationCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/wsbind/wsbind/cmd/bootstrap", "github.com/wsbind/wsbind/cmd/wsbind").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 50 {
		t.Fatalf("go list -deps listed %d packages: not the dependency graph", len(pkgs))
	}
	for _, p := range pkgs {
		if strings.HasPrefix(p, "github.com/wsbind/wsbind/bindings") || strings.HasPrefix(p, "github.com/wsbind/wsbind/examples") ||
			strings.HasPrefix(p, "github.com/wsbind/wsbind/functions") {
			t.Errorf("the host links %s", p)
		}
	}
}
