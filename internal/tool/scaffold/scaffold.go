// Package scaffold writes a new wsbind application: a Go module of its
// own with one binding and its test, the three guests' mains, the SAM
// template, a Makefile (run, test, build, deploy, token), a build image
// and a README. `wsbind init` is its command.
//
// The template and the build image are wsbind's own (infra), with the
// few lines that speak of this repository rewritten, so an application
// deploys what wsbind tests.
package scaffold

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/wsbind/wsbind/infra"
)

//go:embed app
var app embed.FS

// Data fills the files.
type Data struct {
	// Module is the application's module path (example.com/todo).
	Module string
	// Name is a short name for it: its model prefix and README title.
	Name string
	// GoVersion is go.mod's go line (1.26).
	GoVersion string
	// Version is the wsbind version required (v0.3.0, or v0.0.0 with
	// Replace).
	Version string
	// Replace, if not "", is a wsbind checkout go.mod replaces the
	// module with.
	Replace string
}

// Files returns the application's files by slash-separated path.
func Files(d Data) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := fs.WalkDir(app, "app", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		src, err := app.ReadFile(p)
		if err != nil {
			return err
		}
		t, err := template.New(p).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return err
		}
		var out bytes.Buffer
		if err := t.Execute(&out, d); err != nil {
			return err
		}
		name := strings.TrimSuffix(strings.TrimPrefix(p, "app/"), ".tmpl")
		if name == "gitignore" {
			name = ".gitignore"
		}
		files[name] = out.Bytes()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if files["template.yaml"], err = Template(d.Name); err != nil {
		return nil, err
	}
	if files["Containerfile"], err = Containerfile(); err != nil {
		return nil, err
	}
	return files, nil
}

// Write writes the application into dir, which must be empty or absent.
func Write(dir string, d Data) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	files, err := Files(d)
	if err != nil {
		return err
	}
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// rewrite applies each replacement, each of which must apply: a change
// to wsbind's own file that a replacement no longer matches fails the
// scaffold's test, not an application.
func rewrite(what string, src []byte, pairs ...string) ([]byte, error) {
	s := string(src)
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			return nil, fmt.Errorf("scaffold: %s no longer holds %q", what, pairs[i])
		}
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	return []byte(s), nil
}

// Template is wsbind's template for an application named name: its
// functions built from the application's root by its Makefile.
func Template(name string) ([]byte, error) {
	return rewrite("infra/template.yaml", infra.TemplateYAML,
		"  wsbind: a RESTful streaming API over an API Gateway WebSocket API.",
		"  "+name+", a wsbind application: a RESTful streaming API over an API Gateway\n  WebSocket API.",
		"drives the pushes. Build with `sam build -t infra/template.yaml` from the\n  repository root (see infra/sam.mk).",
		"drives the pushes. Build with `sam build` (the Makefile's build-<LogicalId>\n  targets), deploy with `sam deploy`.",
		"sam build cannot tell make\n      which one was chosen: build x86_64 with `SAM_ARCH=x86_64 sam build`\n      (infra/sam.mk).",
		"The build reads it (and\n      its override in samconfig.toml) and makes the package for it.",
		"Build wazero-only\n      packages with `ENGINE=wazero sam build` (infra/sam.mk).",
		"Build wazero-only\n      packages with `ENGINE=wazero sam build`.",
		"  # CodeUri is the repository root: `sam build` runs `make build-<LogicalId>`\n  # there (the top-level Makefile includes infra/sam.mk).",
		"  # CodeUri is the application's root: `sam build` runs `make build-<LogicalId>`\n  # there (Makefile).",
		"      CodeUri: ..\n",
		"      CodeUri: .\n",
	)
}

// Containerfile is wsbind's build image, for an application.
func Containerfile() ([]byte, error) {
	src := string(infra.Containerfile)
	i := strings.Index(src, "\nARG GO_VERSION=")
	if i < 0 {
		return nil, errors.New("scaffold: infra/Containerfile has no ARG GO_VERSION")
	}
	head := `# The build image of the Lambda package, for machines that cannot build
# it themselves (macOS, Windows, Linux without a cross toolchain): SAM's
# build image for provided.al2023, plus Go and a static C library. SAM
# starts it for the functions' architecture, so every build inside is
# native.
#
#   docker build -t wsbind-build -f Containerfile .
#   sam build --use-container --build-image wsbind-build
#
# (podman works the same.) Keep GO_VERSION at least go.mod's.
`
	return []byte(head + src[i+1:]), nil
}

// GoLine is the go line of a go.mod for Go version v (go1.26.3 → 1.26).
func GoLine(v string) string {
	v = strings.TrimPrefix(v, "go")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' })
}

// Name is a short name for module path mod, the last part as an
// identifier: "example.com/my-app" → "my_app".
func Name(mod string) string {
	base := mod[strings.LastIndex(mod, "/")+1:]
	var b strings.Builder
	for _, r := range strings.ToLower(base) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "app"
	}
	return b.String()
}
