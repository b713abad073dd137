// Package wasmbuild compiles this module's guests to WebAssembly for tests
// and benchmarks, the way `make build` does, so that they always run the
// guest code of the tree they test.
package wasmbuild

import (
	"github.com/wsbind/wsbind/internal/tool/lambdapkg"

	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// Flags are the build flags of every guest, the Lambda package's.
var Flags = lambdapkg.WasmFlags

var (
	mu    sync.Mutex
	built = map[string][]byte{}
)

// Build compiles the main package pkg (an import path, such as
// "github.com/wsbind/wsbind/functions/route") with GOOS=wasip1
// GOARCH=wasm and returns the module. Results are kept for the process.
func Build(pkg string) ([]byte, error) {
	mu.Lock()
	defer mu.Unlock()
	if b, ok := built[pkg]; ok {
		return b, nil
	}
	dir, err := os.MkdirTemp("", "wsbind-wasm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "guest.wasm")
	args := append([]string{"build"}, Flags...)
	args = append(args, "-o", out, pkg)
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", pkg, err, stderr.Bytes())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	built[pkg] = b
	return b, nil
}
