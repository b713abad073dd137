package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain_StartErrors runs the bootstrap with each bad setting: it exits
// with status 1 and one line on standard error that names the setting.
func TestMain_StartErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := filepath.Join(t.TempDir(), "bootstrap")
	if out, err := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	empty := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"no handler", nil, nil, `_HANDLER=""`},
		{"unknown handler", nil, []string{"_HANDLER=nope", "WSBIND_BACKEND=memory"}, `_HANDLER="nope"`},
		{"no backend", nil, []string{"_HANDLER=route"}, "WSBIND_BACKEND"},
		{"dynamodb without tables", nil, []string{"_HANDLER=route", "WSBIND_BACKEND=dynamodb"}, "WSBIND_TABLE_ITEMS"},
		{"bad metrics setting", nil, []string{"_HANDLER=route", "WSBIND_BACKEND=memory", "WSBIND_METRICS_NAMESPACE=AWS/Mine"}, "WSBIND_METRICS_NAMESPACE"},
		{"missing guest", nil, []string{"_HANDLER=route", "WSBIND_BACKEND=memory", "LAMBDA_TASK_ROOT=" + empty}, "route.wasm"},
		{"compile nothing", []string{"-compile-cache", filepath.Join(empty, "out"), filepath.Join(empty, "none.wasm")}, nil, "none.wasm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			// Only the settings of the case: none of the machine's.
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir()}, tc.env...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1; stderr %q", err, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "bootstrap: ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr %q, want one line \"bootstrap: ...\" naming %q", stderr.String(), tc.want)
			}
		})
	}
}
