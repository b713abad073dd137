package lambdainit_test

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsbind/wsbind/internal/aws/lambdainit"
)

// tinyWasm is a hand-made module exporting "ans" () → i32: it compiles
// in no time.
var tinyWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
	0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, // types: () → i32
	0x03, 0x02, 0x01, 0x00, // functions: one of type 0
	0x07, 0x07, 0x01, 0x03, 'a', 'n', 's', 0x00, 0x00, // export "ans" = func 0
	0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x2a, 0x0b, // code: i32.const 42
}

func TestCompileCaches(t *testing.T) {
	dir := t.TempDir()
	wasm := filepath.Join(dir, "tiny.wasm")
	if err := os.WriteFile(wasm, tinyWasm, 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	if err := lambdainit.CompileCaches(context.Background(), dir, []string{wasm}, slog.New(slog.NewTextHandler(logs, nil))); err != nil {
		t.Fatal(err)
	}
	// Lambda needs every file of a package readable by all.
	files := 0
	err := filepath.WalkDir(filepath.Join(dir, "tiny.cache"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o644)
		if d.IsDir() {
			want = fs.ModeDir | 0o755
		} else {
			files++
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files != 1 {
		t.Errorf("compiled files: got %d, want 1", files)
	}
	if !strings.Contains(logs.String(), "compiled "+wasm) {
		t.Errorf("no log line for the compile:\n%s", logs)
	}

	junk := filepath.Join(dir, "junk.wasm")
	if err := os.WriteFile(junk, []byte("not wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, files := range [][]string{nil, {junk}, {filepath.Join(dir, "missing.wasm")}} {
		if err := lambdainit.CompileCaches(context.Background(), dir, files, slog.New(slog.NewTextHandler(logs, nil))); err == nil {
			t.Errorf("CompileCaches(%q): got nil error", files)
		}
	}
}

func TestFromEnv(t *testing.T) {
	logs := &logBuffer{}
	env := lambdainit.Process{
		Vars:    []string{"_HANDLER=route", "WSBIND_BACKEND=memory", "LAMBDA_TASK_ROOT=" + t.TempDir()},
		Program: nativeProgram,
		Log:     slog.New(slog.NewTextHandler(logs, nil)),
	}
	h, err := lambdainit.FromEnv(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	if got := proxyResponse(t, invoke(t, h, sample(t, sampleMessage))).Body; got != sampleReply {
		t.Errorf("reply to the sample: got %s, want %s", got, sampleReply)
	}
	if !strings.Contains(logs.String(), `msg="wsbind: ready" function=route engine=native`) {
		t.Errorf("no ready line:\n%s", logs)
	}
}

// pushTables and mgmt are the settings a push worker needs.
var (
	pushTables = []string{"WSBIND_BACKEND=dynamodb", "WSBIND_TABLE_ITEMS=i", "WSBIND_TABLE_CONNECTIONS=c", "WSBIND_TABLE_SUBSCRIPTIONS=s"}
	mgmt       = "WSBIND_MANAGEMENT_ENDPOINT=https://abc.execute-api.us-east-1.amazonaws.com/prod"
)

// The push worker starts with no guest, and refuses an event that is not
// a push request.
func TestFromEnv_Push(t *testing.T) {
	f, err := lambdainit.FromEnv(context.Background(), lambdainit.Process{Vars: append(pushTables, "_HANDLER=push", mgmt, "WSBIND_PUSH_QUOTA=500")})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(context.Background())
	if _, err := f.Invoke(context.Background(), []byte(`{"Records":[]}`)); err == nil || !strings.Contains(err.Error(), "not a push request") {
		t.Fatalf("a stream event to the push worker: got %v", err)
	}
}

func TestFromEnv_Errors(t *testing.T) {
	root := t.TempDir() // no wasm in it
	tests := []struct {
		vars []string
		want string
	}{
		{nil, `_HANDLER=""`},
		{[]string{"_HANDLER=bootstrap", "WSBIND_BACKEND=memory"}, `_HANDLER="bootstrap"`},
		{[]string{"_HANDLER=connect"}, "or memory (in-process, no persistence)"},
		{[]string{"_HANDLER=connect", "WSBIND_BACKEND=dynamodb"}, "WSBIND_BACKEND=dynamodb needs WSBIND_TABLE_ITEMS"},
		{[]string{"_HANDLER=connect", "WSBIND_BACKEND=memory", "LAMBDA_TASK_ROOT=" + root}, "connect.wasm"},
		// The last setting wins, as in os.Getenv.
		{[]string{"_HANDLER=route", "_HANDLER=nope", "WSBIND_BACKEND=memory"}, `_HANDLER="nope"`},
		// The push worker and the fan-out's pacing.
		{[]string{"_HANDLER=push", "WSBIND_BACKEND=memory"}, `push: WSBIND_BACKEND="memory"`},
		{[]string{"_HANDLER=push", "WSBIND_BACKEND=dynamodb"}, "push needs WSBIND_TABLE_CONNECTIONS"},
		{append(pushTables, "_HANDLER=push"), "push needs WSBIND_MANAGEMENT_ENDPOINT"},
		{append(pushTables, "_HANDLER=push", mgmt, "WSBIND_PUSH_WORKERS=-3"), `WSBIND_PUSH_WORKERS="-3"`},
		{append(pushTables, "_HANDLER=streamfanout", mgmt, "WSBIND_PUSH_QUOTA=lots"), `WSBIND_PUSH_QUOTA="lots"`},
		{append(pushTables, "_HANDLER=streamfanout", mgmt, "WSBIND_PUSH_THRESHOLD=x"), `WSBIND_PUSH_THRESHOLD="x"`},
	}
	for _, tt := range tests {
		vars := append([]string{}, tt.vars...) // not nil: nil is the process's environment
		_, err := lambdainit.FromEnv(context.Background(), lambdainit.Process{Vars: vars, CacheRoot: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want an error with %q", tt.vars, err, tt.want)
		}
	}
}

// TestMetricsFromEnv: the metrics settings, and one clear error for each
// bad one.
func TestMetricsFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
		err  string
	}{
		{nil, "wsbind", ""},
		{map[string]string{"WSBIND_METRICS": "on", "WSBIND_METRICS_NAMESPACE": "Shop/WebSocket API_1"}, "Shop/WebSocket API_1", ""},
		{map[string]string{"WSBIND_METRICS": "off", "WSBIND_METRICS_NAMESPACE": "x"}, "", ""},
		{map[string]string{"WSBIND_METRICS": "yes"}, "", `WSBIND_METRICS="yes": want on`},
		{map[string]string{"WSBIND_METRICS_NAMESPACE": "AWS/Lambda"}, "", "AWS/ is reserved"},
		{map[string]string{"WSBIND_METRICS_NAMESPACE": "   "}, "", "only spaces"},
		{map[string]string{"WSBIND_METRICS_NAMESPACE": "shop|ws"}, "", `'|' is not allowed`},
		{map[string]string{"WSBIND_METRICS_NAMESPACE": strings.Repeat("n", 256)}, "", "longer than 255"},
	} {
		got, err := lambdainit.MetricsFromEnv(func(k string) string { return tc.env[k] })
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%v: got %q, %v; want %q", tc.env, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%v: got %q, %v; want an error saying %q", tc.env, got, err, tc.err)
		}
	}
}
