package client

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports: the client links nothing of wsbind (no internal/ type can
// reach its API, no emulator or test kit ships with it), and outside the
// standard library only coder/websocket.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/wsbind/wsbind/client" && !strings.HasPrefix(p, "github.com/coder/websocket") {
			t.Errorf("the client depends on %s", p)
		}
	}
}
