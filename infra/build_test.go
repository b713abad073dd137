package infra

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
