package main

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain_StartErrors runs the command with each bad setting: it exits
// with status 1 and one line on standard error that names the problem,
// and prints nothing on standard output.
func TestMain_StartErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := filepath.Join(t.TempDir(), "wsbind-local")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"short secret", []string{"-guests", t.TempDir()}, []string{"WSBIND_JWT_SECRET=short"}, "WSBIND_JWT_SECRET: auth: HS256 secret of 5 bytes, want at least 32"},
		{"address in use", []string{"-guests", t.TempDir()}, []string{"WSBIND_ADDR=" + busy.Addr().String()}, "address already in use"},
		{"bad address", []string{"-guests", t.TempDir()}, []string{"WSBIND_ADDR=nonsense"}, "WSBIND_ADDR=nonsense"},
		{"missing guests", []string{"-guests", filepath.Join(t.TempDir(), "nowhere")}, nil, "make run builds the guests"},
		{"roles without a token", []string{"-roles", "admin"}, nil, "-roles needs -token"},
		{"unknown flag", []string{"-frobnicate"}, nil, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append(os.Environ(), "WSBIND_ADDR=127.0.0.1:0")
			cmd.Env = append(cmd.Env, tc.env...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("exit: %v, want a non-zero status; stderr %q", err, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if tc.name != "unknown flag" && len(lines) != 1 {
				t.Errorf("stderr has %d lines, want one:\n%s", len(lines), stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) || strings.Contains(stderr.String(), "panic") {
				t.Errorf("stderr %q, want one line naming %q", stderr.String(), tc.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
}
