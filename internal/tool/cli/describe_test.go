package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDescribe_CommandLine(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		status int
		err    string
	}{
		{[]string{"describe", "extra"}, 2, `wsbind describe: unexpected argument "extra"`},
		{[]string{"describe", "-nope"}, 2, "flag provided but not defined: -nope"},
		{[]string{"describe", "-guests", "/nonexistent", "-title", "t"}, 1, "/nonexistent/route.wasm"},
	} {
		var stdout, stderr bytes.Buffer
		got := Main(context.Background(), Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}, tc.args)
		if got != tc.status || !strings.Contains(stderr.String(), tc.err) {
			t.Errorf("%v: status %d, %q; want %d and %q", tc.args, got, stderr.String(), tc.status, tc.err)
		}
	}
}

func TestModuleOf(t *testing.T) {
	dir := t.TempDir()
	for mod, want := range map[string]string{
		"// comment\nmodule example.com/app\n\ngo 1.26\n": "example.com/app",
		"module \"example.com/quoted\"\n":                 "example.com/quoted",
		"go 1.26\n":                                       "",
	} {
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := moduleOf(dir); got != want {
			t.Errorf("moduleOf(%q) = %q, want %q", mod, got, want)
		}
	}
	if got := moduleOf(filepath.Join(dir, "none")); got != "" {
		t.Errorf("no go.mod: %q", got)
	}
}
