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
// with status 1 (2 for a bad flag or fault spec, as the flag package
// does) and one line on standard error that names the problem, and
// prints nothing on standard output.
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
		name   string
		args   []string
		env    []string
		want   string
		status int
	}{
		{"short secret", []string{"-guests", t.TempDir()}, []string{"WSBIND_JWT_SECRET=short"}, "WSBIND_JWT_SECRET: auth: HS256 secret of 5 bytes, want at least 32", 1},
		{"address in use", []string{"-guests", t.TempDir()}, []string{"WSBIND_ADDR=" + busy.Addr().String()}, "address already in use", 1},
		{"bad address", []string{"-guests", t.TempDir()}, []string{"WSBIND_ADDR=nonsense"}, "WSBIND_ADDR=nonsense", 1},
		{"missing guests", []string{"-guests", filepath.Join(t.TempDir(), "nowhere")}, nil, "make run builds the guests", 1},
		{"roles without a token", []string{"-roles", "admin"}, nil, "-roles needs -token", 1},
		{"unknown flag", []string{"-frobnicate"}, nil, "flag provided but not defined", 2},
		{"unknown fault", []string{"-guests", t.TempDir(), "-faults", "post-fial=0.1"}, nil, `-faults "post-fial=0.1": faults: unknown key "post-fial"`, 2},
		{"fault share out of range", []string{"-guests", t.TempDir(), "-faults", "post-fail=0.05,dynamo-throttle=1.5"}, nil, "faults: dynamo-throttle=1.5: a share is from 0 to 1", 2},
		{"bad fault delay", []string{"-guests", t.TempDir()}, []string{"WSBIND_FAULTS=post-delay=20"}, `WSBIND_FAULTS "post-delay=20": faults: post-delay=20: not a duration`, 2},
		// A good spec goes on to start (and fails here for want of guests).
		{"good faults", []string{"-guests", filepath.Join(t.TempDir(), "nowhere"), "-faults", "post-throttle=0.1,seed=1"}, nil, "make run builds the guests", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append(os.Environ(), "WSBIND_ADDR=127.0.0.1:0")
			cmd.Env = append(cmd.Env, tc.env...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != tc.status {
				t.Fatalf("exit: %v, want status %d; stderr %q", err, tc.status, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if tc.name == "good faults" {
				// The line saying which faults are on, then the error.
				if len(lines) != 2 || !strings.Contains(lines[0], "injecting faults") || !strings.Contains(lines[0], "post-throttle=0.1,seed=1") {
					t.Errorf("stderr %q, want the faults logged, then the error", stderr.String())
				}
				lines = lines[1:]
			}
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
