package main

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRun_StartErrors runs wsbind run (and token) with each bad setting:
// it exits with status 1 (2 for a bad flag or setting) and one line on
// standard error that names the problem, and prints nothing on standard
// output.
func TestRun_StartErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := wsbindBinary(t)
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
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
		{"short secret", []string{"run", "-guests", t.TempDir()}, []string{"WSBIND_JWT_SECRET=short"}, "WSBIND_JWT_SECRET: auth: HS256 secret of 5 bytes, want at least 32", 1},
		{"address in use", []string{"run", "-guests", t.TempDir()}, []string{"WSBIND_ADDR=" + busy.Addr().String()}, "address already in use", 1},
		{"bad address", []string{"run", "-guests", t.TempDir()}, []string{"WSBIND_ADDR=nonsense"}, "WSBIND_ADDR=nonsense", 1},
		{"missing guests", []string{"run", "-guests", filepath.Join(t.TempDir(), "nowhere")}, nil, "make run and wsbind run build the guests", 1},
		{"unwritable data directory", []string{"run", "-guests", t.TempDir(), "-data", filepath.Join(notDir, "data")}, nil, "data directory " + filepath.Join(notDir, "data") + ": mkdir " + notDir + ": not a directory", 1},
		{"unwritable data directory from the environment", []string{"run", "-guests", t.TempDir()}, []string{"WSBIND_DATA=" + filepath.Join(notDir, "env")}, "data directory " + filepath.Join(notDir, "env"), 1},
		{"token without a user", []string{"token", "-roles", "admin"}, nil, "wsbind token: want one USER", 2},
		{"unknown flag", []string{"run", "-frobnicate"}, nil, "wsbind run: flag provided but not defined: -frobnicate", 2},
		{"unknown command", []string{"deploy"}, nil, `wsbind: unknown command "deploy"`, 2},
		{"negative idle", []string{"run", "-idle", "-1s"}, nil, "wsbind run: -idle and -lifetime are durations of 0 or more", 2},
		{"no instances", []string{"run", "-instances", "0"}, nil, "wsbind run: -instances 0: want 1 or more", 2},
		{"bad template", []string{"run", "-guests", t.TempDir(), "-template", filepath.Join(t.TempDir(), "none.yaml")}, nil, "wsbind run: -template: open", 2},
		{"not in a module", []string{"run"}, nil, "is not in a Go module: run this in an application's directory (wsbind init DIR makes one)", 1},
		{"unknown fault", []string{"run", "-guests", t.TempDir(), "-faults", "post-fial=0.1"}, nil, `-faults "post-fial=0.1": faults: unknown key "post-fial"`, 2},
		{"fault share out of range", []string{"run", "-guests", t.TempDir(), "-faults", "post-fail=0.05,dynamo-throttle=1.5"}, nil, "faults: dynamo-throttle=1.5: a share is from 0 to 1", 2},
		{"bad fault delay", []string{"run", "-guests", t.TempDir()}, []string{"WSBIND_FAULTS=post-delay=20"}, `WSBIND_FAULTS "post-delay=20": faults: post-delay=20: not a duration`, 2},
		{"bad log format", []string{"run", "-log", "yaml"}, nil, `wsbind run: -log "yaml": want json or text`, 2},
		{"bad metrics namespace", []string{"run"}, []string{"WSBIND_METRICS_NAMESPACE=AWS/Mine"}, `wsbind run: WSBIND_METRICS_NAMESPACE="AWS/Mine": AWS/ is reserved`, 2},
		{"bad WSBIND_LOG", []string{"run"}, []string{"WSBIND_LOG=xml"}, `wsbind run: WSBIND_LOG "xml": want json or text`, 2},
		// A good spec goes on to start (and fails here for want of guests).
		{"good faults, text log", []string{"run", "-log", "text", "-guests", filepath.Join(t.TempDir(), "nowhere"), "-faults", "post-throttle=0.1,seed=1"}, nil, "make run and wsbind run build the guests", 1},
		{"good faults", []string{"run", "-guests", filepath.Join(t.TempDir(), "nowhere"), "-faults", "post-throttle=0.1,seed=1"}, nil, "make run and wsbind run build the guests", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			if tc.name == "not in a module" {
				cmd.Dir = t.TempDir()
			}
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
			if strings.HasPrefix(tc.name, "good faults") {
				// The line saying which faults are on, then the error;
				// the line is JSON unless -log text.
				if len(lines) != 2 || !strings.Contains(lines[0], "injecting faults") || !strings.Contains(lines[0], "post-throttle=0.1,seed=1") {
					t.Errorf("stderr %q, want the faults logged, then the error", stderr.String())
				}
				if text := strings.Contains(tc.name, "text"); json.Valid([]byte(lines[0])) == text {
					t.Errorf("log line %q: JSON %t, want %t", lines[0], !text, !text)
				}
				lines = lines[1:]
			}
			if len(lines) != 1 {
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
