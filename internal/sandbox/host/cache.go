package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/tetratelabs/wazero"
)

// OpenCache opens a function's compilation cache for the wazero engine.
//
// shipped is compiled code made at build time (a directory that
// wazero.NewCompilationCacheWithDir filled, as `bootstrap -compile-cache`
// does); it may be read-only, as a Lambda package is, or missing. work is
// a writable directory (under /tmp on Lambda), created if need be, that
// becomes the cache: each shipped file is linked into it first (a
// symbolic link, so nothing is copied; the shipped route code is 13 MB and
// copying it cost ~10 ms of every cold start). wazero writes into its
// cache directory on a miss and deletes entries of other wazero versions
// it finds there, and fails the compile when it cannot, so a read-only
// directory would turn a harmless miss into a failed start. It writes an
// entry to a new file renamed into place and deletes with os.Remove, so it
// replaces or removes a link and never writes through one.
//
// A missing or unreadable shipped directory is not an error: the cache
// starts empty and the first Compile compiles. Whatever the shipped files
// hold (code for another CPU or another wazero version, or junk), a
// Compile through CompileCached still succeeds. The error is only for a
// work directory that cannot be used; a caller can then run without a
// cache.
func OpenCache(shipped, work string, log *slog.Logger) (wazero.CompilationCache, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, fmt.Errorf("compilation cache: %w", err)
	}
	if shipped != "" {
		if n, err := linkTree(shipped, work); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Warn("wsbind: shipped compiled code not fully linked", "from", shipped, "to", work, "files", n, "err", err)
		}
	}
	c, err := wazero.NewCompilationCacheWithDir(work)
	if err != nil {
		return nil, fmt.Errorf("compilation cache: %w", err)
	}
	return c, nil
}

// linkTree links each regular file under src from the same place under
// dst, creating directories as needed, and reports how many it linked.
// A file already at a link's place (left by a previous process in the
// same environment) is replaced.
func linkTree(src, dst string) (int, error) {
	src, err := filepath.Abs(src)
	if err != nil {
		return 0, err
	}
	n := 0
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o700)
		case !d.Type().IsRegular():
			return nil
		}
		if err := os.Remove(to); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.Symlink(path, to); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}

// CacheFiles counts the files under dir, links to shipped files included
// (0 if it does not exist).
// wazero adds one file per module it compiles and none when it finds the
// module's code in the cache, so a count that grew across a Compile means
// the cache missed. (CompileCached tells a hit more precisely.)
func CacheFiles(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// stamp identifies a version of a file: wazero writes every entry to a
// new file renamed into place, so a write changes at least its time.
type stamp struct {
	size int64
	mod  time.Time
}

// stamps returns the stamp of every file (or link) under dir. Equal stamps
// before and after a Compile mean wazero neither added, replaced nor
// deleted an entry: the compiled code came from the cache. (Counting
// files would miss a stale entry deleted and written again.)
func stamps(dir string) map[string]stamp {
	m := map[string]stamp{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			m[path] = stamp{fi.Size(), fi.ModTime()}
		}
		return nil
	})
	return m
}

// clearFiles removes the files and links under dir and keeps its
// directories: wazero's cache expects its version directory to exist.
func clearFiles(dir string) error {
	var errs []error
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			err = os.Remove(path)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		return nil
	})
	return errors.Join(errs...)
}

// CacheOutcome is what CompileCached found in the cache.
type CacheOutcome struct {
	// Hit reports that the compiled code came from the cache.
	Hit bool
	// Err is why the cache's entry for the module could not be used
	// (and was replaced); nil when it could, or when there was none.
	Err error
}

// CompileCached compiles wasm with an engine whose compilation cache
// lives in dir (the work directory given to OpenCache), and reports
// whether the compiled code came from the cache.
//
// wazero fails the compile outright when a cache entry under the module's
// key cannot be read (truncated, corrupt, not wazero's format).
// CompileCached then empties dir and compiles once more, so a bad cache
// costs a compile, never a failed start. An error is returned only when
// the retry fails too, that is, when the module itself does not compile.
func (w *Wazero) CompileCached(ctx context.Context, wasm []byte, dir string) (Module, CacheOutcome, error) {
	if w.cfg.Cache == nil {
		mod, err := w.Compile(ctx, wasm)
		return mod, CacheOutcome{}, err
	}
	before := stamps(dir)
	mod, err := w.Compile(ctx, wasm)
	if err == nil {
		return mod, CacheOutcome{Hit: maps.Equal(before, stamps(dir))}, nil
	}
	out := CacheOutcome{Err: err}
	if cerr := clearFiles(dir); cerr != nil {
		return nil, out, fmt.Errorf("compile: %w (clearing the cache: %v)", err, cerr)
	}
	mod, err = w.Compile(ctx, wasm)
	return mod, out, err
}
