package host_test

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/wsbind/wsbind/internal/core/identity"
	"github.com/wsbind/wsbind/internal/core/store/memory"
	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/internal/sandbox/host"
	"github.com/wsbind/wsbind/internal/testkit/wasmbuild"
)

// tinyWasm is a hand-made module exporting "ans" () → i32: it compiles in
// no time, for the cache cases that do not need a real guest.
var tinyWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
	0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, // types: () → i32
	0x03, 0x02, 0x01, 0x00, // functions: one of type 0
	0x07, 0x07, 0x01, 0x03, 'a', 'n', 's', 0x00, 0x00, // export "ans" = func 0
	0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x2a, 0x0b, // code: i32.const 42
}

// compileWithCache compiles wasm in a new engine whose cache is the cache
// given (nil: a new one in dir), then closes the engine; it reports how
// long Compile took.
func compileWithCache(t *testing.T, c wazero.CompilationCache, dir string, wasm []byte) (host.CacheOutcome, time.Duration) {
	t.Helper()
	ctx := context.Background()
	if c == nil {
		var err error
		if c, err = wazero.NewCompilationCacheWithDir(dir); err != nil {
			t.Fatal(err)
		}
	}
	defer c.Close(ctx)
	eng, err := host.NewWazero(ctx, host.WazeroConfig{Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	start := time.Now()
	_, out, err := eng.CompileCached(ctx, wasm, dir)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return out, took
}

// copyDir copies the tree src into a new directory dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
}

// makeReadOnly makes a tree read-only as the Lambda package is (0555
// directories, 0444 files), and writable again when the test ends.
func makeReadOnly(t *testing.T, dir string) {
	t.Helper()
	chmodTree(t, dir, 0o555, 0o444)
	t.Cleanup(func() { chmodTree(t, dir, 0o755, 0o644) })
}

func chmodTree(t *testing.T, dir string, dirMode, fileMode fs.FileMode) {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fileMode
		if d.IsDir() {
			mode = dirMode
		}
		return os.Chmod(path, mode)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot lists every file under dir with its size and time.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		b.WriteString(rel + " " + fi.Mode().String() + " " + fi.ModTime().String() + "\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// testLog is a logger that writes to the test's log.
func testLog(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(testWriter{t}, nil)) }

// TestOpenCache compiles the connect guest once into a cache, as
// `bootstrap -compile-cache` does at build time, and starts from that
// shipped cache the way a Lambda environment does.
func TestOpenCache(t *testing.T) {
	wasm, err := wasmbuild.Build("github.com/wsbind/wsbind/functions/connect")
	if err != nil {
		t.Fatal(err)
	}
	pristine := filepath.Join(t.TempDir(), "connect.cache")
	out, cold := compileWithCache(t, nil, pristine, wasm)
	if out.Hit || out.Err != nil {
		t.Fatalf("first compile into an empty cache: got %+v, want a clean miss", out)
	}
	if n := host.CacheFiles(pristine); n != 1 {
		t.Fatalf("cache files after the first compile: got %d, want 1", n)
	}
	t.Logf("compiled connect.wasm (%d bytes) in %v", len(wasm), cold)

	t.Run("ReadOnlyShipped", func(t *testing.T) {
		t.Parallel()
		shipped := filepath.Join(t.TempDir(), "connect.cache")
		copyDir(t, pristine, shipped)
		makeReadOnly(t, shipped)
		before := snapshot(t, shipped)
		work := filepath.Join(t.TempDir(), "tmp", "wsbind-cache", "connect") // not there yet
		c, err := host.OpenCache(shipped, work, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := host.CacheFiles(work), host.CacheFiles(shipped); got != want {
			t.Fatalf("files linked: got %d, want %d", got, want)
		}
		ctx := context.Background()
		defer c.Close(ctx)
		eng, err := host.NewWazero(ctx, host.WazeroConfig{Cache: c})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close(ctx)
		start := time.Now()
		mod, out, err := eng.CompileCached(ctx, wasm, work)
		warm := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if !out.Hit || out.Err != nil {
			t.Errorf("compile from the shipped cache: got %+v, want a hit", out)
		}
		if got := host.CacheFiles(work); got != 1 {
			t.Errorf("work cache files after the hit: got %d, want 1", got)
		}
		if warm*4 > cold {
			t.Errorf("compile from the cache took %v, not much less than compiling (%v)", warm, cold)
		}
		t.Logf("loaded from the cache in %v (compiling took %v)", warm, cold)
		if after := snapshot(t, shipped); after != before {
			t.Errorf("the shipped cache changed:\n%s\nwant\n%s", after, before)
		}

		// The loaded code runs: the connect guest records a connection.
		st := memory.New()
		pool := host.NewPool(mod, 1)
		defer pool.Close(ctx)
		ok, err := host.CallConnect(ctx, pool, &host.Services{Conns: st, Log: testLog(t)},
			abi.ConnEvent{Kind: abi.EventConnect, ConnID: "c1", User: identity.User{ID: "alice"}, At: 1})
		if err != nil || !ok {
			t.Fatalf("connect: got %v, %v; want true, nil", ok, err)
		}
		if e, ok := st.Conn("c1"); !ok || e.User.ID != "alice" {
			t.Errorf("recorded connection: got %+v, %v; want alice's", e, ok)
		}
	})

	t.Run("CorruptShipped", func(t *testing.T) {
		t.Parallel()
		shipped := filepath.Join(t.TempDir(), "connect.cache")
		copyDir(t, pristine, shipped)
		junk := bytes.Repeat([]byte("not compiled code "), 100)
		filepath.WalkDir(shipped, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				err = os.WriteFile(path, junk, 0o644)
			}
			return err
		})
		makeReadOnly(t, shipped)
		work := filepath.Join(t.TempDir(), "connect")
		c, err := host.OpenCache(shipped, work, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		out, _ := compileWithCache(t, c, work, wasm)
		if out.Hit {
			t.Errorf("compile over a corrupt entry: got a hit")
		}
		// wazero itself fails a compile whose cache entry it cannot read;
		// CompileCached saw that and compiled again.
		t.Logf("wazero's error over the corrupt entry: %v", out.Err)
		// The corrupt entry was replaced by good code: the next start hits.
		out, _ = compileWithCache(t, nil, work, wasm)
		if !out.Hit || out.Err != nil {
			t.Errorf("compile after the recompile: got %+v, want a hit", out)
		}
	})
}

// TestOpenCache_Misses: whatever the shipped cache lacks or holds, a
// compile succeeds; it just compiles.
func TestOpenCache_Misses(t *testing.T) {
	pristine := filepath.Join(t.TempDir(), "tiny.cache")
	if out, _ := compileWithCache(t, nil, pristine, tinyWasm); out.Hit || out.Err != nil {
		t.Fatalf("first compile: got %+v, want a clean miss", out)
	}
	entries, err := filepath.Glob(filepath.Join(pristine, "wazero-*", "*"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("cache entries: got %v, %v; want one", entries, err)
	}
	entry := entries[0]
	versionDir := filepath.Dir(entry)

	tests := []struct {
		name   string
		change func(t *testing.T, shipped string) // shipped is a copy of pristine
		hit    bool
	}{
		{"Same", func(*testing.T, string) {}, true},
		{"Missing", func(t *testing.T, shipped string) { os.RemoveAll(shipped) }, false},
		{"Empty", func(t *testing.T, shipped string) { os.RemoveAll(filepath.Join(shipped, filepath.Base(versionDir))) }, false},
		{"OtherWazeroVersion", func(t *testing.T, shipped string) {
			// Each wazero version has its own directory.
			rename(t, filepath.Join(shipped, filepath.Base(versionDir)), filepath.Join(shipped, "wazero-v0.0.1-"+strings.SplitN(filepath.Base(versionDir), "-", 3)[2]))
		}, false},
		{"OtherCPU", func(t *testing.T, shipped string) {
			// The entry's name hashes the CPU features: another CPU's
			// entry has another name.
			dir := filepath.Join(shipped, filepath.Base(versionDir))
			rename(t, filepath.Join(dir, filepath.Base(entry)), filepath.Join(dir, strings.Repeat("0", len(filepath.Base(entry)))))
		}, false},
		{"StaleEntry", func(t *testing.T, shipped string) {
			// An entry written by another wazero version under this
			// one's name: wazero deletes it and compiles.
			path := filepath.Join(shipped, filepath.Base(versionDir), filepath.Base(entry))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[7] ^= 0x20 // first byte of the version string after "WAZEVO" and its length
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"Junk", func(t *testing.T, shipped string) {
			path := filepath.Join(shipped, filepath.Base(versionDir), filepath.Base(entry))
			if err := os.WriteFile(path, bytes.Repeat([]byte("junk"), 100), 0o644); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"Truncated", func(t *testing.T, shipped string) {
			path := filepath.Join(shipped, filepath.Base(versionDir), filepath.Base(entry))
			if err := os.Truncate(path, 3); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shipped := filepath.Join(t.TempDir(), "tiny.cache")
			copyDir(t, pristine, shipped)
			tt.change(t, shipped)
			work := filepath.Join(t.TempDir(), "tiny")
			c, err := host.OpenCache(shipped, work, testLog(t))
			if err != nil {
				t.Fatal(err)
			}
			out, _ := compileWithCache(t, c, work, tinyWasm)
			if out.Hit != tt.hit {
				t.Errorf("hit: got %v, want %v (%+v)", out.Hit, tt.hit, out)
			}
			// Whatever was shipped, the work cache now serves the next start.
			if out, _ := compileWithCache(t, nil, work, tinyWasm); !out.Hit {
				t.Errorf("next start: got %+v, want a hit", out)
			}
		})
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// TestWazeroCache_ReadOnlyMiss is why OpenCache links into a writable
// directory: wazero fails a compile that misses a read-only cache, since
// it cannot write the entry.
func TestWazeroCache_ReadOnlyMiss(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes into read-only directories")
	}
	dir := t.TempDir()
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	makeReadOnly(t, dir)
	ctx := context.Background()
	eng, err := host.NewWazero(ctx, host.WazeroConfig{Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	if _, err := eng.Compile(ctx, tinyWasm); err == nil {
		t.Errorf("compile into a read-only cache succeeded; the writable work directory may no longer be needed")
	}
}

func TestOpenCache_UnusableWork(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := host.OpenCache("", filepath.Join(file, "cache"), testLog(t)); err == nil {
		t.Error("OpenCache under a file: got nil error")
	}
}
