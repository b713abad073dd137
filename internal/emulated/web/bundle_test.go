package web_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// tsDir is the TypeScript client's package, from this package's directory.
var tsDir = filepath.Join("..", "..", "..", "clients", "ts")

// TestClientBundle_UpToDate: static/client, the client modules the page
// imports, is exactly what `make web-client` makes of clients/ts/src (tsc
// with tsconfig.client.json): no file more, none less, none different. It
// compiles with the TypeScript of clients/ts's lock file, running npm ci
// there first when that is not the one installed (CI runs go test before
// make ts-test installs it). Without node, or npm to install, it skips.
func TestClientBundle_UpToDate(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: static/client is not compared with a fresh build of clients/ts/src")
	}
	want := jsonString(t, filepath.Join(tsDir, "package-lock.json"), "packages", "node_modules/typescript", "version")
	if want == "" {
		t.Fatal("clients/ts/package-lock.json names no TypeScript version")
	}
	if got := jsonString(t, filepath.Join(tsDir, "node_modules", "typescript", "package.json"), "version"); got != want {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Skipf("clients/ts has TypeScript %q installed, its lock file %s, and npm is not installed: static/client is not checked", got, want)
		}
		t.Logf("clients/ts has TypeScript %q installed, its lock file %s: npm ci", got, want)
		run(t, tsDir, npm, "ci", "--no-audit", "--no-fund")
	}

	out := t.TempDir()
	tsc, err := filepath.Abs(filepath.Join(tsDir, "node_modules", "typescript", "bin", "tsc"))
	if err != nil {
		t.Fatal(err)
	}
	run(t, ".", node, tsc, "-p", "tsconfig.client.json", "--outDir", out)

	fresh, committed := readTree(t, out), readTree(t, filepath.Join("static", "client"))
	stale := false
	for _, name := range sortedKeys(fresh) {
		if got, ok := committed[name]; !ok {
			t.Errorf("static/client/%s is missing", name)
			stale = true
		} else if !bytes.Equal(got, fresh[name]) {
			t.Errorf("static/client/%s differs from tsc's output", name)
			stale = true
		}
	}
	for _, name := range sortedKeys(committed) {
		if _, ok := fresh[name]; !ok {
			t.Errorf("static/client/%s is not made of clients/ts/src", name)
			stale = true
		}
	}
	if stale {
		t.Error("the debugger page's copy of the TypeScript client is stale: run make web-client and commit internal/emulated/web/static/client")
	}
}

// jsonString reads the string at keys in a JSON file: "" if there is
// none, or no file.
func jsonString(t *testing.T, file string, keys ...string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	s, _ := v.(string)
	return s
}

func run(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v (in %s): %v\n%s", filepath.Base(name), args, dir, err, out)
	}
}

// readTree reads every file under dir, by slash-separated path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := fs.WalkDir(os.DirFS(dir), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(os.DirFS(dir), p)
		files[p] = b
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return files
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
