// Package emulatortest starts the local emulator for tests: the three
// guests built once per test binary, compiled code cached across runs,
// free ports, closed when the test ends.
package emulatortest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wsbind/wsbind/internal/testkit/wasmbuild"
	"github.com/wsbind/wsbind/local/emulator"
)

// Secret is the HS256 secret of the emulators Start makes.
var Secret = []byte("emulator-test-secret-of-at-least-32-bytes")

// guests builds the three guests once per test binary into a directory.
var guests = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "wsbind-emulator-guests-")
	if err != nil {
		return "", err
	}
	for _, name := range []string{"connect", "route", "streamfanout"} {
		wasm, err := wasmbuild.Build("github.com/wsbind/wsbind/functions/" + name)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, name+".wasm"), wasm, 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
})

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
// secret, the guests built from this module, logs discarded. Tests that
// start the emulator themselves (to see it fail) begin from it.
func Config(t testing.TB) emulator.Config {
	t.Helper()
	dir, err := guests()
	if err != nil {
		t.Fatal(err)
	}
	return emulator.Config{
		Addr:      "127.0.0.1:0",
		JWTSecret: Secret,
		GuestDir:  dir,
		CacheDir:  filepath.Join(os.TempDir(), "wsbind-emulator-test-cache"),
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}
