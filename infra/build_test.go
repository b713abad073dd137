package infra

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestSAMBuild_Route runs the target `sam build` runs for Route, for this
// machine's architecture (no qemu), and checks the package it leaves.
func TestSAMBuild_Route(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bootstrap and a guest (~15 s)")
	}
	make, err := exec.LookPath("make")
	if err != nil {
		t.Skip("no make")
	}
	lambdaArch, machine := map[string]string{"amd64": "x86_64", "arm64": "arm64"}[runtime.GOARCH],
		map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH]
	if lambdaArch == "" {
		t.Skipf("Lambda runs no %s", runtime.GOARCH)
	}
	tmp := t.TempDir()
	art := filepath.Join(tmp, "artifacts")
	// sam build runs make in (a copy of) the repository root. BUILD keeps
	// the intermediate bootstrap out of the repository's build/.
	cmd := exec.Command(make, "-f", "Makefile", "-f", "infra/sam.mk", "build-Route",
		"ARTIFACTS_DIR="+art, "SAM_ARCH="+lambdaArch, "BUILD="+filepath.Join(tmp, "build"))
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}

	f, err := elf.Open(filepath.Join(art, "bootstrap"))
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	defer f.Close()
	if f.Machine != machine || f.Type != elf.ET_EXEC {
		t.Errorf("bootstrap: %v %v, want an executable for %v", f.Machine, f.Type, machine)
	}
	if fi, err := os.Stat(filepath.Join(art, "bootstrap")); err != nil || fi.Mode().Perm()&0o555 != 0o555 {
		t.Errorf("bootstrap: mode %v, %v: Lambda needs it readable and executable by all", fi.Mode(), err)
	}
	wasm, err := os.ReadFile(filepath.Join(art, "route.wasm"))
	if err != nil || !bytes.HasPrefix(wasm, []byte("\x00asm")) {
		t.Errorf("route.wasm: not a wasm module (%v)", err)
	}
	files := 0
	filepath.WalkDir(filepath.Join(art, "route.cache"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return err
	})
	if files == 0 {
		t.Error("route.cache/: no compiled code")
	}
	// The default engine, wasmtime: the route guest compiled ahead of
	// time, readable by Lambda's user.
	if fi, err := os.Stat(filepath.Join(art, "route.cwasm")); err != nil || fi.Size() == 0 || fi.Mode().Perm()&0o444 != 0o444 {
		t.Errorf("route.cwasm: %v, %v: want the ahead-of-time code, readable by all", fi, err)
	}
	if _, err := f.DynamicSymbols(); err == nil {
		t.Error("bootstrap is dynamically linked: Lambda's C library may not be the one it was built against")
	}
	for _, other := range []string{"connect.wasm", "streamfanout.wasm"} {
		if _, err := os.Stat(filepath.Join(art, other)); err == nil {
			t.Errorf("%s in Route's package: each function ships only its own guest", other)
		}
	}
}

// TestBuild_WithoutToolchain: on a machine without the C cross compiler
// and without qemu (here: named ones that do not exist), `make build`
// for arm64 still makes a package Lambda can run (a static arm64
// bootstrap, pure Go, and the guests) and says in one line what it
// skipped.
func TestBuild_WithoutToolchain(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bootstrap and the guests (~20 s)")
	}
	make, err := exec.LookPath("make")
	if err != nil {
		t.Skip("no make")
	}
	out := filepath.Join(t.TempDir(), "build")
	cmd := exec.Command(make, "--no-print-directory", "build", "ARCH=arm64", "BUILD="+out,
		"CROSS_CC=wsbind-no-such-cc", "QEMU=wsbind-no-such-qemu")
	cmd.Dir = ".."
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, got)
	}
	var notes []string
	for _, l := range strings.Split(string(got), "\n") {
		if strings.HasPrefix(l, "build: ") {
			notes = append(notes, l)
		}
	}
	if len(notes) != 1 {
		t.Fatalf("want one line saying what was skipped, got %d:\n%s", len(notes), got)
	}
	for _, want := range []string{"no wsbind-no-such-cc for linux/arm64", "pure Go (wazero)", "<name>.cwasm", "no wsbind-no-such-qemu", "<name>.cache/", "deploys as it is"} {
		if !strings.Contains(notes[0], want) {
			t.Errorf("the line %q does not say %q", notes[0], want)
		}
	}

	f, err := elf.Open(filepath.Join(out, "bootstrap"))
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 || f.Type != elf.ET_EXEC {
		t.Errorf("bootstrap: %v %v, want an arm64 executable", f.Machine, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("bootstrap: dynamically linked; provided.al2023 needs it static")
		}
	}
	for _, name := range []string{"connect", "route", "streamfanout"} {
		if b, err := os.ReadFile(filepath.Join(out, name+".wasm")); err != nil || !bytes.HasPrefix(b, []byte("\x00asm")) {
			t.Errorf("%s.wasm: not a wasm module (%v)", name, err)
		}
		for _, skipped := range []string{name + ".cache", name + ".cwasm"} {
			if _, err := os.Stat(filepath.Join(out, skipped)); err == nil {
				t.Errorf("%s: made, though it could not be", skipped)
			}
		}
	}
}

// TestContainerfile_GoVersion: the build image's Go is the one go.mod
// asks for, so a container build compiles what CI tests.
func TestContainerfile_GoVersion(t *testing.T) {
	cf, err := os.ReadFile("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var goLine string
	for _, l := range strings.Split(string(mod), "\n") {
		if v, ok := strings.CutPrefix(l, "go "); ok {
			goLine = strings.TrimSpace(v)
		}
	}
	major, _, _ := strings.Cut(goLine, ".")
	minor := strings.SplitN(goLine, ".", 3)
	want := "ARG GO_VERSION=" + major + "." + minor[1]
	if !strings.Contains(string(cf), want+"\n") {
		t.Errorf("infra/Containerfile: want %q (go.mod says go %s)", want, goLine)
	}
	if !strings.Contains(string(cf), "FROM public.ecr.aws/sam/build-provided.al2023") {
		t.Errorf("infra/Containerfile: not based on SAM's provided.al2023 build image, which sam build --use-container needs")
	}
}
