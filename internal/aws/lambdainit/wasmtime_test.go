package lambdainit_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wsbind/wsbind/internal/aws/lambdahost"
	"github.com/wsbind/wsbind/internal/testkit/runtimeapi"
)

// The wasmtime bootstrap links wasmtime's static library with cgo; this
// test binary stays pure Go and builds it as `make build` does.
// WSBIND_REQUIRE_WASMTIME=1 (CI) makes a missing C toolchain a failure
// rather than a skip; WSBIND_REQUIRE_ARM64=1 likewise the arm64 one
// (gcc-aarch64-linux-gnu, qemu-user-static).

// aotBuild is a bootstrap built with wasmtime for one architecture, and
// the guests compiled ahead of time by it (route alone under qemu).
type aotBuild struct {
	once sync.Once
	dir  string // bootstrap, <function>.wasm, .cache/ and .cwasm
	err  error
}

var aotBuilds = map[string]*aotBuild{"amd64": {}, "arm64": {}}

// wasmtimeDir returns the directory of the wasmtime build for goarch,
// made once per test binary. On another architecture than the host's the
// bootstrap is cross-built and run under qemu as runner says.
func wasmtimeDir(t testing.TB, goarch string) string {
	t.Helper()
	cc, runner := crossTools(t, goarch)
	b := aotBuilds[goarch]
	b.once.Do(func() {
		b.dir, b.err = buildWasmtime(t, goarch, cc, runner)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.dir
}

// crossTools returns the C compiler for goarch and the command running
// its binaries, skipping the test when they are missing.
func crossTools(t testing.TB, goarch string) (cc string, runner []string) {
	t.Helper()
	need := func(env string, tools ...string) {
		for _, tool := range tools {
			if _, err := exec.LookPath(tool); err != nil {
				if os.Getenv(env) == "1" {
					t.Fatalf("%s: %v (%s=1)", tool, err, env)
				}
				t.Skipf("%s: %v", tool, err)
			}
		}
	}
	host, _ := exec.Command("go", "env", "GOHOSTARCH").Output()
	if strings.TrimSpace(string(host)) == goarch {
		need("WSBIND_REQUIRE_WASMTIME", "gcc")
		return "gcc", nil
	}
	if goarch != "arm64" {
		t.Fatalf("no cross toolchain for %s", goarch)
	}
	need("WSBIND_REQUIRE_ARM64", "aarch64-linux-gnu-gcc", "qemu-aarch64-static")
	// Compiled on a CPU with every feature qemu knows, so that the test
	// shows the code does not depend on them (it is run on neoverse-n1).
	return "aarch64-linux-gnu-gcc", []string{"qemu-aarch64-static", "-cpu", "max"}
}

func buildWasmtime(t testing.TB, goarch, cc string, runner []string) (string, error) {
	dir, err := os.MkdirTemp("", "wsbind-wasmtime-"+goarch+"-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bootstrap")
	// As the Makefile builds it: static, so that it needs no C library
	// of a particular version on Lambda.
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc,wsbind_wasmtime,netgo,osusergo",
		"-ldflags=-s -extldflags=-static", "-o", bin, "github.com/wsbind/wsbind/cmd/bootstrap")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "CC="+cc, "GOOS=linux", "GOARCH="+goarch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build the wasmtime bootstrap for %s: %v\n%s", goarch, err, out)
	}
	// Every function natively; under qemu, compiling is slow: route alone.
	fns := []string{lambdahost.NameConnect, lambdahost.NameRoute, lambdahost.NameStreamFanout}
	if runner != nil {
		fns = []string{lambdahost.NameRoute}
	}
	argv := append(append(runner, bin), "-compile-cache", dir)
	for _, fn := range fns {
		wasm, err := os.ReadFile(filepath.Join(buildDir(t), fn+".wasm"))
		if err != nil {
			return "", err
		}
		f := filepath.Join(dir, fn+".wasm")
		if err := os.WriteFile(f, wasm, 0o644); err != nil {
			return "", err
		}
		argv = append(argv, f)
	}
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("bootstrap -compile-cache (%s): %v\n%s", goarch, err, out)
	}
	for _, fn := range fns {
		if _, err := os.Stat(filepath.Join(dir, fn+".cwasm")); err != nil {
			return "", fmt.Errorf("bootstrap -compile-cache made no %s.cwasm: %w", fn, err)
		}
	}
	return dir, nil
}

// TestWasmtime_Bootstrap: the bootstrap built with wasmtime serves from
// the ahead-of-time code, and falls back to wazero, with one line, when
// that code is missing, damaged or not wanted.
func TestWasmtime_Bootstrap(t *testing.T) {
	dir := wasmtimeDir(t, hostArch(t))
	bin := filepath.Join(dir, "bootstrap")
	tests := []struct {
		name       string
		files      []string
		env        []string
		damage     bool
		wantEngine string
		fallback   bool
	}{
		{"ahead of time", []string{"route.cwasm", "route.wasm", "route.cache"}, nil, false, "wasmtime", false},
		{"asked for wazero", []string{"route.cwasm", "route.wasm", "route.cache"}, []string{"WSBIND_ENGINE=wazero"}, false, "wazero", false},
		{"no .cwasm", []string{"route.wasm", "route.cache"}, nil, false, "wazero", true},
		{"damaged .cwasm", []string{"route.cwasm", "route.wasm", "route.cache"}, nil, true, "wazero", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := taskRootFrom(t, dir, tt.files...)
			if tt.damage {
				cw := filepath.Join(root, "route.cwasm")
				b, err := os.ReadFile(cw)
				if err != nil {
					t.Fatal(err)
				}
				// The task root is read-only, as Lambda's is.
				if err := os.Chmod(cw, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(cw, b[:len(b)/2], 0o644); err != nil {
					t.Fatal(err)
				}
			}
			rt, err := runtimeapi.New()
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Close()
			env := append([]string{"_HANDLER=route", "LAMBDA_TASK_ROOT=" + root, "WSBIND_BACKEND=memory"}, tt.env...)
			p := start(t, bin, rt, env...)
			if got := p.invokeRoute(t, rt, sample(t, sampleMessage)); got != sampleReply {
				t.Errorf("reply to the sample: got %s, want %s", got, sampleReply)
			}
			logs := p.logs.String()
			if !strings.Contains(logs, `"msg":"wsbind: ready","function":"route","engine":"`+tt.wantEngine+`"`) {
				t.Errorf("not ready on %s:\n%s", tt.wantEngine, logs)
			}
			if n := strings.Count(logs, "no ahead-of-time code"); n != map[bool]int{true: 1}[tt.fallback] {
				t.Errorf("fallback lines: %d:\n%s", n, logs)
			}
			if strings.Contains(logs, "compiled route") {
				t.Errorf("wazero compiled despite its shipped code:\n%s", logs)
			}
		})
	}
}

// TestWasmtime_Arm64: the arm64 bootstrap, built across, with route.cwasm
// compiled under qemu on a CPU with every feature, answers a route event
// on a Graviton2-class CPU (qemu's neoverse-n1).
func TestWasmtime_Arm64(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs under qemu")
	}
	dir := wasmtimeDir(t, "arm64")
	root := taskRootFrom(t, dir, "route.cwasm", "route.wasm", "route.cache")
	rt, err := runtimeapi.New()
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	p := startCmd(t, []string{"qemu-aarch64-static", "-cpu", "neoverse-n1", filepath.Join(dir, "bootstrap")}, rt,
		"_HANDLER=route", "LAMBDA_TASK_ROOT="+root, "WSBIND_BACKEND=memory")
	if got := p.invokeRoute(t, rt, sample(t, sampleMessage)); got != sampleReply {
		t.Errorf("reply to the sample: got %s, want %s", got, sampleReply)
	}
	if logs := p.logs.String(); !strings.Contains(logs, `"engine":"wasmtime"`) || strings.Contains(logs, "no ahead-of-time code") {
		t.Errorf("not served from the ahead-of-time code:\n%s", logs)
	}
}

func hostArch(t testing.TB) string {
	out, err := exec.Command("go", "env", "GOHOSTARCH").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
