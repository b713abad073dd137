// Package emulatortest starts the local emulator for tests of an
// application: the guests of the module under test (its
// functions/{connect,route,streamfanout}) built once per test binary,
// compiled code cached across runs, the module's template.yaml if it has
// one, free ports, everything closed when the test ends. Dial connects a
// client to it.
package emulatortest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsbind/wsbind/internal/tool/lambdapkg"
	"github.com/wsbind/wsbind/local/emulator"
)

// Secret is the HS256 secret of the emulators Start makes.
var Secret = []byte("emulator-test-secret-of-at-least-32-bytes")

// module is the root of the module under test: the test binary runs in
// its package's directory.
var module = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("emulatortest: the test does not run in a Go module")
	}
	return filepath.Dir(mod), nil
})

// guests builds the module's three guests once per test binary.
var guests = sync.OnceValues(func() (string, error) {
	root, err := module()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "wsbind-emulator-guests-")
	if err != nil {
		return "", err
	}
	var log bytes.Buffer
	if err := lambdapkg.Guests(context.Background(), lambdapkg.Options{Dir: root, Out: dir, Log: &log}); err != nil {
		return "", fmt.Errorf("build the guests of %s: %w", root, err)
	}
	return dir, nil
})

// logOut is where the emulators Config configures print their logs.
var logOut struct {
	sync.Mutex
	w io.Writer
}

// LogTo makes the emulators Config configures from now on print their
// logs on w, as JSON lines (emulator.NewLogger), the functions' lines
// with their embedded metrics among them: what `wsbind run` prints. A
// TestMain can so collect what a whole suite prints and check it. nil
// means nowhere, the default.
func LogTo(w io.Writer) {
	logOut.Lock()
	defer logOut.Unlock()
	logOut.w = w
}

func logWriter() io.Writer {
	logOut.Lock()
	defer logOut.Unlock()
	if logOut.w == nil {
		return io.Discard
	}
	return logOut.w
}

// Start runs an emulator on free ports of 127.0.0.1 until the test ends.
// tune, if not nil, adjusts its configuration first.
func Start(t testing.TB, tune func(*emulator.Config)) *emulator.Emulator {
	t.Helper()
	cfg := Config(t)
	if tune != nil {
		tune(&cfg)
	}
	em, err := emulator.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := em.Close(ctx); err != nil {
			t.Errorf("close the emulator: %v", err)
		}
	})
	return em
}

// Config is the configuration Start starts with: free ports, the test
// secret, the guests built from the module under test and its
// template.yaml (if it has one), logs discarded unless LogTo says
// otherwise. Tests that start the
// emulator themselves (to see it fail) begin from it.
func Config(t testing.TB) emulator.Config {
	t.Helper()
	dir, err := guests()
	if err != nil {
		t.Fatal(err)
	}
	root, _ := module()
	tmpl, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		tmpl = nil // wsbind's own
	}
	return emulator.Config{
		Addr:      "127.0.0.1:0",
		JWTSecret: Secret,
		GuestDir:  dir,
		CacheDir:  filepath.Join(os.TempDir(), "wsbind-emulator-test-cache"),
		Template:  tmpl,
		Log:       emulator.NewLogger(logWriter(), false),
	}
}

// Token is a token for user, valid for an hour, whose roles are roles,
// signed with Secret: what a client of an emulator Start made presents.
func Token(t testing.TB, user string, roles ...string) string {
	t.Helper()
	tok, err := emulator.Token(Secret, user, time.Hour, roles...)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
