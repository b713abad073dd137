package lambdainit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsbind/wsbind/internal/aws/lambdahost"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/sandbox/host"
	"github.com/wsbind/wsbind/internal/testkit/logcheck"
	"github.com/wsbind/wsbind/internal/testkit/runtimeapi"
	"github.com/wsbind/wsbind/internal/testkit/wasmbuild"
)

const routePkg = "github.com/wsbind/wsbind/functions/route"

// built holds what `make build` makes, built once per test binary: the
// bootstrap, each function's .wasm, and its .cache/ made by `bootstrap
// -compile-cache`.
var built struct {
	once sync.Once
	dir  string
	err  error

	nativeOnce sync.Once
	native     string
	nativeErr  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	for _, b := range aotBuilds {
		if b.dir != "" {
			os.RemoveAll(b.dir)
		}
	}
	os.Exit(code)
}

// buildDir returns the directory holding bootstrap, <function>.wasm and
// <function>.cache/.
func buildDir(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "wsbind-lambdahost-"); built.err != nil {
			return
		}
		if built.err = goBuild(filepath.Join(built.dir, "bootstrap")); built.err != nil {
			return
		}
		var files []string
		for _, fn := range []string{lambdahost.NameConnect, lambdahost.NameRoute, lambdahost.NameStreamFanout} {
			var wasm []byte
			if wasm, built.err = wasmbuild.Build("github.com/wsbind/wsbind/functions/" + fn); built.err != nil {
				return
			}
			f := filepath.Join(built.dir, fn+".wasm")
			if built.err = os.WriteFile(f, wasm, 0o644); built.err != nil {
				return
			}
			files = append(files, f)
		}
		cmd := exec.Command(filepath.Join(built.dir, "bootstrap"), append([]string{"-compile-cache", built.dir}, files...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("bootstrap -compile-cache: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.dir
}

// nativeBootstrap returns the bootstrap built with -tags wsbind_native.
func nativeBootstrap(t testing.TB) string {
	t.Helper()
	dir := buildDir(t)
	built.nativeOnce.Do(func() {
		built.native = filepath.Join(dir, "bootstrap-native")
		built.nativeErr = goBuild(built.native, "-tags", "lambda.norpc,wsbind_native")
	})
	if built.nativeErr != nil {
		t.Fatal(built.nativeErr)
	}
	return built.native
}

// goBuild builds the bootstrap as the Makefile does.
func goBuild(out string, flags ...string) error {
	if len(flags) == 0 {
		flags = []string{"-tags", "lambda.norpc"}
	}
	args := append([]string{"build", "-trimpath", "-ldflags=-s", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, "github.com/wsbind/wsbind/cmd/bootstrap")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build bootstrap: %v\n%s", err, b)
	}
	return nil
}

// taskRoot lays out a read-only task root holding the given files of the
// build directory, as Lambda unpacks a package.
func taskRoot(t testing.TB, names ...string) string {
	t.Helper()
	return taskRootFrom(t, buildDir(t), names...)
}

// taskRootFrom is taskRoot with the files of dir.
func taskRootFrom(t testing.TB, dir string, names ...string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "task")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		from, to := filepath.Join(dir, name), filepath.Join(root, name)
		fi, err := os.Stat(from)
		if err != nil {
			t.Fatal(err)
		}
		if fi.IsDir() {
			err = os.CopyFS(to, os.DirFS(from))
		} else {
			var b []byte
			if b, err = os.ReadFile(from); err == nil {
				err = os.WriteFile(to, b, 0o644)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	chmodTree(t, root, 0o555, 0o444)
	t.Cleanup(func() { chmodTree(t, root, 0o755, 0o644) })
	return root
}

func chmodTree(t testing.TB, dir string, dirMode, fileMode fs.FileMode) {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(path, dirMode)
		}
		return os.Chmod(path, fileMode)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// process is a running bootstrap.
type process struct {
	logs *logBuffer
	// ctx ends when the process does (or the test times out).
	ctx  context.Context
	done chan error
}

// start runs a bootstrap with env against rt, and waits for its first
// poll of the Runtime API: its init is over.
func start(t *testing.T, bin string, rt *runtimeapi.Server, env ...string) *process {
	t.Helper()
	return startCmd(t, []string{bin}, rt, env...)
}

// startCmd is start with a command line: an emulator before the binary.
func startCmd(t *testing.T, argv []string, rt *runtimeapi.Server, env ...string) *process {
	t.Helper()
	p := &process{logs: &logBuffer{}, done: make(chan error, 1)}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(env, "AWS_LAMBDA_RUNTIME_API="+rt.Addr(), "TMPDIR="+t.TempDir())
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	p.ctx = ctx
	go func() {
		err := cmd.Wait()
		cancel()
		p.done <- err
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("bootstrap's output:\n%s", p.logs)
		}
	})
	select {
	case <-rt.Polled():
	case <-ctx.Done():
		t.Fatalf("bootstrap did not poll for an event: %v\n%s", ctx.Err(), p.logs)
	}
	return p
}

// invokeRoute sends a MESSAGE event and returns the route's reply.
func (p *process) invokeRoute(t *testing.T, rt *runtimeapi.Server, payload []byte) string {
	t.Helper()
	resp, err := rt.Invoke(p.ctx, payload)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	if resp.Error {
		t.Fatalf("invoke failed: %s", resp.Body)
	}
	var pr events.APIGatewayProxyResponse
	if err := json.Unmarshal(resp.Body, &pr); err != nil || pr.StatusCode != 200 {
		t.Fatalf("response %s: %v", resp.Body, err)
	}
	return pr.Body
}

func messageEvent(t *testing.T, conn, frame string) []byte {
	t.Helper()
	b, err := json.Marshal(events.APIGatewayWebsocketProxyRequest{
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{EventType: "MESSAGE", RouteKey: "$default", ConnectionID: conn, RequestID: "req-" + conn},
		Body:           frame,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBootstrap runs the bootstrap binary as Lambda would, with the
// compiled code `bootstrap -compile-cache` made, against a stand-in of
// the Runtime API.
func TestBootstrap(t *testing.T) {
	dir := buildDir(t)
	rt, err := runtimeapi.New()
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	root := taskRoot(t, "route.wasm", "route.cache")
	p := start(t, filepath.Join(dir, "bootstrap"), rt, "_HANDLER=route", "LAMBDA_TASK_ROOT="+root, "WSBIND_BACKEND=memory")

	if got := p.invokeRoute(t, rt, sample(t, sampleMessage)); got != sampleReply {
		t.Errorf("reply to the sample: got %s, want %s", got, sampleReply)
	}
	// The store lives as long as the process: what one event creates, the
	// next one lists.
	created := p.invokeRoute(t, rt, messageEvent(t, "c1", `{"stream":"questions","payload":{"action":"create","data":{"question_text":"Cold?"}}}`))
	if !strings.Contains(created, `"response_status":201`) {
		t.Fatalf("create: got %s", created)
	}
	listed := p.invokeRoute(t, rt, messageEvent(t, "c2", `{"stream":"questions","payload":{"action":"list"}}`))
	if !strings.Contains(listed, `"question_text":"Cold?"`) {
		t.Errorf("list after create: got %s", listed)
	}
	// An event route does not serve fails that invocation, and the
	// process goes on serving.
	resp, err := rt.Invoke(p.ctx, sample(t, sampleDynamoDB))
	if err != nil || !resp.Error || !bytes.Contains(resp.Body, []byte("route: event type")) {
		t.Errorf("DynamoDB event to route: got %+v, %v; want a failed invocation", resp, err)
	}
	if got := p.invokeRoute(t, rt, sample(t, sampleMessage)); got != sampleReply {
		t.Errorf("reply after a failed invocation: got %s", got)
	}
	logs := p.logs.String()
	if strings.Contains(logs, "compiled route") {
		t.Errorf("the shipped compiled code was not used:\n%s", logs)
	}
	if !strings.Contains(logs, `"msg":"wsbind: ready","function":"route","engine":"wazero"`) {
		t.Errorf("no ready line:\n%s", logs)
	}
	// Everything it printed is JSON lines: one per invocation, the four
	// messages' with their fields and metrics (EMF), and the failed
	// invocation's with its error.
	rep, err := logcheck.CheckAll(strings.NewReader(logs), logcheck.Options{EMF: true})
	if err != nil {
		t.Errorf("%v\n%s", err, logs)
	}
	if rep.Invocations["route"] != 5 || rep.EMF != 4 {
		t.Errorf("%d route lines, %d with metrics; want 5 and 4:\n%s", rep.Invocations["route"], rep.EMF, logs)
	}
}

// TestBootstrap_NoCompiledCode: without shipped compiled code the
// bootstrap compiles, says so once, and serves.
func TestBootstrap_NoCompiledCode(t *testing.T) {
	rt, err := runtimeapi.New()
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	root := taskRoot(t, "route.wasm")
	p := start(t, filepath.Join(buildDir(t), "bootstrap"), rt, "_HANDLER=route", "LAMBDA_TASK_ROOT="+root, "WSBIND_BACKEND=memory")
	if got := p.invokeRoute(t, rt, sample(t, sampleMessage)); got != sampleReply {
		t.Errorf("reply to the sample: got %s, want %s", got, sampleReply)
	}
	if n := strings.Count(p.logs.String(), "compiled route (no matching compiled code shipped)"); n != 1 {
		t.Errorf("compile lines: got %d, want 1:\n%s", n, p.logs)
	}
}

// TestBootstrap_Native: the native baseline serves the same replies
// without any wasm.
func TestBootstrap_Native(t *testing.T) {
	bin := nativeBootstrap(t)
	rt, err := runtimeapi.New()
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	p := start(t, bin, rt, "_HANDLER=route", "LAMBDA_TASK_ROOT="+t.TempDir(), "WSBIND_BACKEND=memory")
	if got := p.invokeRoute(t, rt, sample(t, sampleMessage)); got != sampleReply {
		t.Errorf("reply to the sample: got %s, want %s", got, sampleReply)
	}
	if !strings.Contains(p.logs.String(), `"engine":"native"`) {
		t.Errorf("not the native engine:\n%s", p.logs)
	}
}

// TestBootstrap_Settings: a start without a usable setting exits at once
// with one line saying what to do.
func TestBootstrap_Settings(t *testing.T) {
	bin := filepath.Join(buildDir(t), "bootstrap")
	root := taskRoot(t, "route.wasm")
	tests := []struct {
		env  []string
		want string
	}{
		{[]string{"_HANDLER=route", "LAMBDA_TASK_ROOT=" + root}, "or memory (in-process, no persistence)"},
		{[]string{"_HANDLER=route", "LAMBDA_TASK_ROOT=" + root, "WSBIND_BACKEND=dynamodb"}, "WSBIND_BACKEND=dynamodb needs WSBIND_TABLE_ITEMS"},
		{[]string{"_HANDLER=bootstrap", "WSBIND_BACKEND=memory"}, "want connect, route, streamfanout, authorizer or push"},
		{[]string{"_HANDLER=connect", "LAMBDA_TASK_ROOT=" + root, "WSBIND_BACKEND=memory"}, "connect.wasm"},
	}
	for _, tt := range tests {
		cmd := exec.Command(bin)
		cmd.Env = tt.env
		out, err := cmd.CombinedOutput()
		if err == nil || !bytes.Contains(out, []byte(tt.want)) || bytes.Count(out, []byte("\n")) != 1 {
			t.Errorf("%v: got %v, %q; want exit status 1 and one line with %q", tt.env, err, out, tt.want)
		}
	}
}

// TestRoute_WazeroMatchesNative runs the route guest compiled to wasm,
// on wazero, and the same code linked natively: their replies are the
// same bytes.
func TestRoute_WazeroMatchesNative(t *testing.T) {
	wasm, err := wasmbuild.Build(routePkg)
	if err != nil {
		t.Fatal(err)
	}
	// (Not from the compiled code the bootstrap made: a test binary has
	// no dependency versions in its build information, so its wazero is
	// version "dev" and looks for its own cache entries.)
	ctx := context.Background()
	eng, err := host.NewWazero(ctx, host.WazeroConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	mod, err := eng.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}

	native, wasi := newFixture(), newFixture()
	hn := native.handler(t, lambdahost.NameRoute, nil)
	hw := wasi.handler(t, lambdahost.NameRoute, mod)
	for _, f := range []*fixture{native, wasi} {
		for _, id := range []string{"q1", "q2"} {
			f.store.Put("questions", store.Item{ID: id, Data: []byte(`{"id":"` + id + `","question_text":"Seeded ` + id + `","pub_date":"2026-01-02T03:04:05Z","published":false}`)})
		}
	}
	payloads := [][]byte{sample(t, sampleMessage)}
	for _, frame := range []string{
		`{"stream":"questions","payload":{"action":"list","request_id":"r1"}}`,
		`{"stream":"questions","payload":{"action":"retrieve","pk":"q1"}}`,
		`{"stream":"questions","payload":{"action":"retrieve","pk":"nope"}}`,
		`{"stream":"questions","payload":{"action":"update","pk":"q1","data":{"question_text":"Updated"}}}`,
		`{"stream":"questions","payload":{"action":"publish","pk":"q2"}}`,
		`{"stream":"questions","payload":{"action":"report"}}`,
		`{"stream":"questions","payload":{"action":"subscribe","data":{"action":"update"}}}`,
		`{"stream":"questions","payload":{"action":"delete","pk":"q1"}}`,
		`{"stream":"notes","payload":{"action":"list"}}`,
		`{"stream":"nope","payload":{"action":"list"}}`,
		"\xff",
	} {
		payloads = append(payloads, messageEvent(t, "c1", frame))
	}
	for i, p := range payloads {
		a, b := invoke(t, hn, p), invoke(t, hw, p)
		if !bytes.Equal(a, b) {
			t.Errorf("event %d: native\n%s\nwasm\n%s", i, a, b)
		}
		if i == 0 && proxyResponse(t, b).Body != sampleReply {
			t.Errorf("wasm reply to the sample: got %s, want %s", b, sampleReply)
		}
	}
}
