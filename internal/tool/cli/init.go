package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/wsbind/wsbind/internal/tool/scaffold"
)

// modulePath is what go.mod accepts as a module path, roughly: the go
// command has the last word, at go mod tidy.
var modulePath = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]*(/[A-Za-z0-9._~-]+)*$`)

// initCmd writes a new application module into a directory and resolves
// its dependencies.
func initCmd(ctx context.Context, env Env, args []string) error {
	fs := flags("init")
	module := fs.String("module", "", "the application's module `path`; default the directory's name")
	replace := fs.String("replace", "", "require wsbind from the checkout in `dir` (a replace directive) instead of a published version")
	version := fs.String("version", "", "the wsbind `version` to require; default this command's own")
	noTidy := fs.Bool("no-tidy", false, "skip go mod tidy (go.sum is then left to the first build)")
	pos, err := parse(env, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one DIR, the new application's directory (wsbind init myapp)")
	}
	dir := pos[0]
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(or(env.Dir, "."), dir)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return err
	}
	name := filepath.Base(dir)
	mod := or(*module, name)
	if !modulePath.MatchString(mod) {
		return usagef("module path %q: want letters, digits and ._~- in /-separated parts (example.com/todo); -module sets it", mod)
	}
	d := scaffold.Data{Module: mod, Name: scaffold.Name(mod), GoVersion: scaffold.GoLine(runtime.Version())}
	switch {
	case *replace != "":
		abs, err := filepath.Abs(*replace)
		if err != nil {
			return err
		}
		if b, err := os.ReadFile(filepath.Join(abs, "go.mod")); err != nil || !bytes.HasPrefix(b, []byte("module github.com/wsbind/wsbind\n")) {
			return usagef("-replace %s: not a wsbind checkout (no go.mod of module github.com/wsbind/wsbind)", *replace)
		}
		d.Replace, d.Version = abs, "v0.0.0"
	case *version != "":
		if !strings.HasPrefix(*version, "v") {
			return usagef("-version %q: want a module version such as v0.3.0", *version)
		}
		d.Version = *version
	default:
		v := ownVersion()
		if v == "" {
			return usagef("this wsbind was built from a checkout and knows no published version to require: pass -replace with the checkout's directory, or -version")
		}
		d.Version = v
	}
	if err := scaffold.Write(dir, d); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "wrote %s (module %s, wsbind %s)\n", dir, mod, or(d.Replace, d.Version))
	if !*noTidy {
		fmt.Fprintln(env.Stdout, "go mod tidy")
		cmd := exec.CommandContext(ctx, "go", "mod", "tidy")
		cmd.Dir = dir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go mod tidy in %s: %w\n%s", dir, err, strings.TrimSpace(out.String()))
		}
	}
	rel := pos[0]
	fmt.Fprintf(env.Stdout, "next:\n  cd %s\n  make run     # the local emulator\n  make test    # its tests\n", rel)
	return nil
}

// ownVersion is the published version this command was built at, or ""
// for a build from a checkout.
func ownVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" || strings.Contains(v, "+dirty") {
		return ""
	}
	// A pseudo-version stamped from a local checkout's VCS is not
	// published either; go install ...@latest gives a real one.
	if bi.Main.Sum == "" {
		return ""
	}
	return v
}
