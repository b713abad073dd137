package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wsbind/wsbind/internal/emulated/asyncapi"
	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/internal/sandbox/host"
	"github.com/wsbind/wsbind/internal/tool/lambdapkg"
)

// describeCmd builds the module's route guest, asks it for its bindings
// (the wsbind_describe export) and writes the AsyncAPI document made of
// them: the same description the emulator serves, without starting it.
func describeCmd(ctx context.Context, env Env, args []string) error {
	fs := flags("describe")
	out := fs.String("o", "", "write the document to `file` instead of standard output")
	guests := fs.String("guests", "", "describe the route.wasm already built in `dir` instead of building this module's")
	title := fs.String("title", "", "the document's info.title; default the module's path")
	version := fs.String("version", "", "the document's info.version, the API's own; default 1.0.0")
	addr := fs.String("addr", or(env.Getenv("WSBIND_ADDR"), "127.0.0.1:8080"), "the local emulator's `address` in the document's servers; default $WSBIND_ADDR or 127.0.0.1:8080")
	raw := fs.Bool("bindings", false, "write the route guest's own description (the emulator's bindings.json) instead of the AsyncAPI document")
	pos, err := parse(env, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}

	dir := *guests
	if dir == "" || *title == "" {
		root, err := moduleDir(ctx, env.Dir)
		if err != nil {
			if dir == "" {
				return err
			}
		} else {
			if *title == "" {
				*title = moduleOf(root)
			}
			if dir == "" {
				// The guests `wsbind run` builds, where it builds them, so
				// that the compiled code in .cache serves both.
				dir = filepath.Join(root, "build", "local")
				fmt.Fprintf(env.Stderr, "wsbind describe: building the route guest of %s into %s\n", root, dir)
				if err := lambdapkg.Guests(ctx, lambdapkg.Options{Dir: root, Out: dir, Functions: []string{"route"}}); err != nil {
					return err
				}
			}
		}
	}
	bindings, err := describeGuest(ctx, env, filepath.Join(dir, "route.wasm"), filepath.Join(dir, ".cache"))
	if err != nil {
		return err
	}
	doc := append(bindings, '\n')
	if !*raw {
		doc, err = asyncapi.FromDescribe(bindings, asyncapi.Options{Title: *title, Version: *version, Emulator: *addr})
		if err != nil {
			return err
		}
	}
	if *out == "" {
		_, err := env.Stdout.Write(doc)
		return err
	}
	return os.WriteFile(*out, doc, 0o644)
}

// describeGuest runs the route guest at file in wazero, as the emulator
// does (its compiled code cached in cacheDir), and returns what its
// wsbind_describe export answers.
func describeGuest(ctx context.Context, env Env, file, cacheDir string) ([]byte, error) {
	wasm, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := host.WazeroConfig{Interruptible: true, GuestEnv: guestEnv(), Stderr: env.Stderr}
	if c, err := host.OpenCache("", cacheDir, log); err == nil {
		cfg.Cache = c
		defer c.Close(ctx)
	}
	eng, err := host.NewWazero(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer eng.Close(ctx)
	mod, _, err := eng.CompileCached(ctx, wasm, cacheDir)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", file, err)
	}
	inst, err := mod.NewInstance(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	defer inst.Close(ctx)
	out, err := inst.Call(ctx, abi.ExportDescribe, nil)
	if err != nil {
		return nil, fmt.Errorf("%s does not describe its bindings (a guest built with a wsbind older than the describe export?): %w", file, err)
	}
	return out, nil
}

// moduleOf is the module path in root's go.mod, or "" when it cannot
// be read.
func moduleOf(root string) string {
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "module" {
			if p, err := strconv.Unquote(f[1]); err == nil {
				return p
			}
			return f[1]
		}
	}
	return ""
}
