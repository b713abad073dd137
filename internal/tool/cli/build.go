package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/wsbind/wsbind/infra"
	"github.com/wsbind/wsbind/internal/tool/lambdapkg"
)

// buildCmd makes the Lambda package of the module in the working
// directory.
func buildCmd(ctx context.Context, env Env, args []string) error {
	fs := flags("build")
	arch := fs.String("arch", "", "the Lambda `architecture`, arm64 or x86_64; default what the stack deploys: the Architecture parameter in samconfig.toml, else template.yaml's default")
	engine := fs.String("engine", "wasmtime", "the `engine` the bootstrap runs guests with: wasmtime or wazero (pure Go)")
	out := fs.String("o", "build/lambda", "the package's `dir`ectory (sam deploy's CodeUri)")
	funcs := fs.String("functions", "connect,route,streamfanout", "the guests to include, comma-separated; \"none\" for the bootstrap alone")
	tmplFile := fs.String("template", "", "the SAM template `file` the architecture is checked against; default template.yaml at the module's root, if there is one")
	cc := fs.String("cc", "", "the C `compiler` for Linux on the target (wasmtime); default gcc natively, aarch64-linux-gnu-gcc or x86_64-linux-gnu-gcc across")
	qemu := fs.String("qemu", "", "the `emulator` that runs the target's bootstrap on this machine; default qemu-aarch64-static or qemu-x86_64-static")
	verbose := fs.Bool("v", false, "print the commands run and their output")
	pos, err := parse(env, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *engine != "wasmtime" && *engine != "wazero" {
		return usagef("-engine %q: want wasmtime or wazero", *engine)
	}
	root, err := moduleDir(ctx, env.Dir)
	if err != nil {
		return err
	}
	tmpl := *tmplFile
	if tmpl == "" {
		if _, err := os.Stat(filepath.Join(root, "template.yaml")); err == nil {
			tmpl = filepath.Join(root, "template.yaml")
		}
	}
	target, err := targetArch(*arch, tmpl)
	if err != nil {
		return err
	}
	var fns []string
	if *funcs != "none" {
		fns = []string{}
		for _, f := range strings.Split(*funcs, ",") {
			if f = strings.TrimSpace(f); f != "" {
				fns = append(fns, f)
			}
		}
		if len(fns) == 0 {
			return usagef("-functions %q: name at least one guest, or none", *funcs)
		}
	} else {
		fns = []string{}
	}
	dir := *out
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(or(env.Dir, "."), dir)
	}
	log := io.Discard
	if *verbose {
		log = env.Stderr
	}
	fmt.Fprintf(env.Stdout, "building the Lambda package for %s (%s) in %s\n", lambdapkg.LambdaArch(target), *engine, dir)
	res, err := lambdapkg.Build(ctx, lambdapkg.Options{
		Dir: root, Out: dir, Arch: target, Engine: *engine, Functions: fns,
		CC: *cc, QEMU: *qemu, Log: log,
	})
	if err != nil {
		return err
	}
	if res.Note != "" {
		fmt.Fprintln(env.Stdout, "build: "+res.Note)
	}
	return list(env.Stdout, dir)
}

// targetArch is the architecture to build for: the flag, or what the
// stack deploys. Both given and different is an error now rather than a
// function that fails every invocation after the deploy.
func targetArch(flagArch, tmpl string) (string, error) {
	var want string
	if flagArch != "" {
		a, err := lambdapkg.Arch(flagArch)
		if err != nil {
			return "", usagef("-arch: %v", err)
		}
		want = a
	}
	deployed, from, err := deployArch(tmpl)
	if err != nil {
		return "", err
	}
	switch {
	case deployed == "" && want == "":
		return lambdapkg.Arch(defaultArch)
	case deployed == "":
		return want, nil
	case want == "":
		return deployed, nil
	case want != deployed:
		return "", fmt.Errorf("-arch %s, but %s deploys Architecture=%s: the functions would fail on every invocation; build with -arch %s, or change Architecture there",
			lambdapkg.LambdaArch(want), from, lambdapkg.LambdaArch(deployed), lambdapkg.LambdaArch(deployed))
	}
	return want, nil
}

// defaultArch is the architecture without a template: Lambda's cheaper
// one, and the template's default.
const defaultArch = "arm64"

// deployArch is the Architecture the stack of template tmpl deploys, in
// Go's name, and where that was read: samconfig.toml's parameter
// overrides beside the template, else the template's default. "" when
// there is no template or it has no Architecture parameter.
func deployArch(tmpl string) (arch, from string, err error) {
	if tmpl == "" {
		return "", "", nil
	}
	t, err := infra.ParseFile(tmpl)
	if err != nil {
		return "", "", err
	}
	params, _ := t["Parameters"].(map[string]any)
	p, _ := params["Architecture"].(map[string]any)
	if p == nil {
		return "", "", nil
	}
	val, from := fmt.Sprint(p["Default"]), filepath.Base(tmpl)+" (the Architecture parameter's default)"
	if p["Default"] == nil {
		val = ""
	}
	cfg := filepath.Join(filepath.Dir(tmpl), "samconfig.toml")
	if v, err := samconfigArch(cfg); err != nil {
		return "", "", err
	} else if v != "" {
		val, from = v, "samconfig.toml (parameter_overrides)"
	}
	if val == "" {
		return "", "", nil
	}
	a, err := lambdapkg.Arch(val)
	if err != nil {
		return "", "", fmt.Errorf("%s: %v", from, err)
	}
	return a, from, nil
}

var archOverride = regexp.MustCompile(`(?:^|[\s,])Architecture=("?)([A-Za-z0-9_]+)("?)`)

// samconfigArch reads the Architecture parameter override of the
// default environment's deploy command from a samconfig.toml, or "".
func samconfigArch(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	var cfg map[string]any
	if err := toml.Unmarshal(b, &cfg); err != nil {
		return "", fmt.Errorf("%s: %v", path, err)
	}
	var overrides []string
	for _, cmd := range []string{"global", "deploy"} {
		switch v := dig(cfg, "default", cmd, "parameters", "parameter_overrides").(type) {
		case string:
			overrides = append(overrides, v)
		case []any:
			for _, s := range v {
				overrides = append(overrides, fmt.Sprint(s))
			}
		}
	}
	arch := ""
	for _, o := range overrides {
		for _, m := range archOverride.FindAllStringSubmatch(o, -1) {
			arch = m[2]
		}
	}
	return arch, nil
}

// dig follows keys down nested tables.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// list prints the package's top-level entries and sizes.
func list(w io.Writer, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		var size int64
		if e.IsDir() {
			filepath.WalkDir(filepath.Join(dir, e.Name()), func(_ string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if fi, err := d.Info(); err == nil {
						size += fi.Size()
					}
				}
				return nil
			})
			fmt.Fprintf(w, "  %-24s %10d bytes\n", e.Name()+"/", size)
			continue
		}
		if fi, err := e.Info(); err == nil {
			size = fi.Size()
		}
		fmt.Fprintf(w, "  %-24s %10d bytes\n", e.Name(), size)
	}
	return nil
}
