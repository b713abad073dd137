// Package lambdapkg makes the Lambda package of a wsbind application: the
// generic bootstrap for the target architecture, the application's
// guests (functions/<name> of its module, compiled to WebAssembly), and
// the code compiled from them for the target, made by running that
// bootstrap (natively, or under qemu).
//
// What a machine lacks it skips, and says so in one line: without a C
// compiler for Linux on the target the bootstrap is pure Go (wazero) and
// there is no ahead-of-time code; without a way to run the target's
// bootstrap there is no compiled code, and each cold start compiles its
// guest. Either way the package deploys.
package lambdapkg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Bootstrap is the import path of the generic bootstrap. An application
// builds the version its go.mod requires.
const Bootstrap = "github.com/wsbind/wsbind/cmd/bootstrap"

// Functions are the guests of an application, each functions/<name>.
var Functions = []string{"connect", "route", "streamfanout"}

// WasmFlags are the build flags of every guest: a reactor module,
// stripped, without local paths.
var WasmFlags = []string{"-buildmode=c-shared", "-trimpath", "-ldflags=-s"}

// Options say what to build.
type Options struct {
	// Dir is a directory of the application's module: its guests are
	// ./functions/<name> there. "" means the working directory.
	Dir string
	// Out receives the package. Required.
	Out string
	// Arch is the target, amd64 or arm64 (Go's names; x86_64 is taken
	// too). "" means this machine's.
	Arch string
	// Engine is wasmtime (the default) or wazero.
	Engine string
	// Functions are the guests to include; nil means all three. An
	// empty, non-nil slice means the bootstrap alone (the authorizer, the
	// push worker).
	Functions []string
	// CC is the C compiler for Linux on Arch, for the wasmtime bootstrap.
	// "" means gcc natively, aarch64-linux-gnu-gcc or
	// x86_64-linux-gnu-gcc across.
	CC string
	// QEMU runs a bootstrap for another architecture on this machine. ""
	// means qemu-aarch64-static or qemu-x86_64-static.
	QEMU string
	// Go is the go command; "" means "go".
	Go string
	// Log receives the commands run and their output; nil discards.
	Log io.Writer
}

// Result says what was made.
type Result struct {
	// Engine is the engine the bootstrap runs guests with: Options.Engine,
	// or wazero when the wasmtime bootstrap could not be linked.
	Engine string
	// Note is one line saying what this machine could not make and what
	// that costs, or "" when the package is complete.
	Note string
}

// Arch returns Go's name for a Lambda architecture or Go's own.
func Arch(a string) (string, error) {
	switch a {
	case "amd64", "x86_64":
		return "amd64", nil
	case "arm64", "aarch64":
		return "arm64", nil
	}
	return "", fmt.Errorf("architecture %q: want arm64 or x86_64 (amd64)", a)
}

// LambdaArch returns Lambda's name for Go's architecture.
func LambdaArch(goarch string) string {
	if goarch == "amd64" {
		return "x86_64"
	}
	return goarch
}

// toolchain is what this machine has for the target.
type toolchain struct {
	arch, cc, qemu, qemuCPU string
	canCC, canRun           bool
}

func probe(o Options) toolchain {
	t := toolchain{arch: o.Arch, cc: o.CC, qemu: o.QEMU}
	native := o.Arch == runtime.GOARCH
	if t.cc == "" {
		switch {
		case native:
			t.cc = "gcc"
		case o.Arch == "arm64":
			t.cc = "aarch64-linux-gnu-gcc"
		default:
			t.cc = "x86_64-linux-gnu-gcc"
		}
	}
	if native {
		t.qemu = ""
	} else if t.qemu == "" {
		t.qemu = map[string]string{"arm64": "qemu-aarch64-static", "amd64": "qemu-x86_64-static"}[o.Arch]
	}
	if o.Arch == "arm64" {
		// The baseline of Lambda's arm64 CPUs: Graviton2.
		t.qemuCPU = "neoverse-n1"
	}
	linux := runtime.GOOS == "linux"
	t.canCC = linux && found(t.cc)
	t.canRun = linux && (native || found(t.qemu))
	return t
}

func found(cmd string) bool {
	_, err := exec.LookPath(cmd)
	return err == nil
}

// Build makes the package in o.Out.
func Build(ctx context.Context, o Options) (Result, error) {
	if o.Out == "" {
		return Result{}, errors.New("no output directory")
	}
	arch, err := Arch(cmp(o.Arch, runtime.GOARCH))
	if err != nil {
		return Result{}, err
	}
	o.Arch = arch
	o.Engine = cmp(o.Engine, "wasmtime")
	if o.Engine != "wasmtime" && o.Engine != "wazero" {
		return Result{}, fmt.Errorf("engine %q: want wasmtime or wazero", o.Engine)
	}
	if o.Functions == nil {
		o.Functions = Functions
	}
	o.Go = cmp(o.Go, "go")
	if o.Log == nil {
		o.Log = io.Discard
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return Result{}, err
	}
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return Result{}, err
	}

	tc := probe(o)
	res := Result{Engine: o.Engine}
	if o.Engine == "wasmtime" && !tc.canCC {
		res.Engine = "wazero"
	}
	wasm, err := guests(ctx, o, out)
	if err != nil {
		return Result{}, err
	}
	boot := filepath.Join(out, "bootstrap")
	env, args := []string{"GOOS=linux", "GOARCH=" + o.Arch}, []string{"build", "-trimpath"}
	if res.Engine == "wasmtime" {
		env = append(env, "CGO_ENABLED=1", "CC="+tc.cc)
		args = append(args, "-tags", "lambda.norpc,wsbind_wasmtime,netgo,osusergo", "-ldflags=-s -extldflags=-static")
	} else {
		env = append(env, "CGO_ENABLED=0")
		args = append(args, "-tags", "lambda.norpc", "-ldflags=-s")
	}
	if err := goBuild(ctx, o, env, append(args, "-o", boot, Bootstrap)); err != nil {
		return Result{}, err
	}
	if err := os.Chmod(boot, 0o755); err != nil {
		return Result{}, err
	}
	for _, f := range o.Functions {
		for _, stale := range []string{f + ".cache", f + ".cwasm"} {
			if err := os.RemoveAll(filepath.Join(out, stale)); err != nil {
				return Result{}, err
			}
		}
	}
	if tc.canRun && len(wasm) > 0 {
		name, args := boot, append([]string{"-compile-cache", out}, wasm...)
		var env []string
		if tc.qemu != "" {
			name, args = tc.qemu, append([]string{boot}, args...)
			if tc.qemuCPU != "" {
				env = append(env, "QEMU_CPU="+tc.qemuCPU)
			}
		}
		if err := run(ctx, o, "", env, name, args...); err != nil {
			return Result{}, fmt.Errorf("compile the guests for %s: %w", o.Arch, err)
		}
	}
	res.Note = note(o, tc, res.Engine, len(wasm) > 0)
	return res, nil
}

// Guests builds the guests o.Functions (nil: all three) of the module in
// o.Dir into o.Out, as <name>.wasm: what the emulator runs.
func Guests(ctx context.Context, o Options) error {
	if o.Out == "" {
		return errors.New("no output directory")
	}
	if o.Functions == nil {
		o.Functions = Functions
	}
	o.Go = cmp(o.Go, "go")
	if o.Log == nil {
		o.Log = io.Discard
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return err
	}
	_, err = guests(ctx, o, out)
	return err
}

func guests(ctx context.Context, o Options, out string) ([]string, error) {
	var wasm []string
	for _, f := range o.Functions {
		if strings.ContainsAny(f, `/\.`) || f == "" {
			return nil, fmt.Errorf("function %q: want a name under functions/", f)
		}
		file := filepath.Join(out, f+".wasm")
		if err := goBuild(ctx, o, []string{"GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0"},
			append(append([]string{"build"}, WasmFlags...), "-o", file, "./functions/"+f)); err != nil {
			return nil, err
		}
		wasm = append(wasm, file)
	}
	return wasm, nil
}

// note is the one line on what was skipped, or "".
func note(o Options, tc toolchain, engine string, guests bool) string {
	var parts []string
	if o.Engine == "wasmtime" && !tc.canCC {
		where := ""
		if runtime.GOOS != "linux" {
			where = " on " + runtime.GOOS
		}
		parts = append(parts, fmt.Sprintf("no %s for linux/%s%s: the bootstrap is pure Go (wazero) and the ahead-of-time code (<name>.cwasm) is skipped", tc.cc, o.Arch, where))
	}
	if !tc.canRun && guests {
		why := fmt.Sprintf("no %s to run the linux/%s bootstrap", tc.qemu, o.Arch)
		if runtime.GOOS != "linux" {
			why = fmt.Sprintf("a linux/%s bootstrap cannot run on %s", o.Arch, runtime.GOOS)
		}
		what := "<name>.cache/"
		if engine == "wasmtime" {
			what += " and <name>.cwasm"
		}
		parts = append(parts, why+": the compiled code ("+what+") is skipped and each cold start compiles its guest (seconds)")
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, "; ") + ". The package deploys as it is; for all of it build in the container (docs/deploying.md)."
}

func goBuild(ctx context.Context, o Options, env, args []string) error {
	return run(ctx, o, o.Dir, env, o.Go, args...)
}

// run runs a command, logging it; a failure carries its output.
func run(ctx context.Context, o Options, dir string, env []string, name string, args ...string) error {
	fmt.Fprintf(o.Log, "%s%s %s\n", prefix(env), name, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(o.Log, &buf), io.MultiWriter(o.Log, &buf)
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(buf.String())
		if msg == "" {
			return fmt.Errorf("%s: %w", filepath.Base(name), err)
		}
		return fmt.Errorf("%s: %w\n%s", filepath.Base(name), err, msg)
	}
	return nil
}

func prefix(env []string) string {
	if len(env) == 0 {
		return ""
	}
	return strings.Join(env, " ") + " "
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
