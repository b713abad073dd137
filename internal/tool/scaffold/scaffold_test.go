package scaffold

import (
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/wsbind/wsbind/infra"
	"github.com/wsbind/wsbind/internal/aws/lambdahost"
)

var data = Data{Module: "example.com/todo", Name: "todo", GoVersion: "1.26", Version: "v0.3.0"}

// TestFiles_Template: the application's template passes the offline
// check wsbind's own passes, against the application's Makefile (its
// build-<LogicalId> targets and their handlers) at the application's
// root, and cfn-lint where it is installed.
func TestFiles_Template(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, data); err != nil {
		t.Fatal(err)
	}
	tpl, err := infra.ParseFile(filepath.Join(dir, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile(filepath.Join(dir, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := infra.Config{
		Handlers:    []string{lambdahost.NameConnect, lambdahost.NameRoute, lambdahost.NameStreamFanout, lambdahost.NameAuthorizer, lambdahost.NamePush},
		Make:        infra.ParseSAMMakefile(mk),
		TemplateDir: dir, RepoRoot: dir,
	}
	for _, p := range infra.Check(tpl, cfg) {
		t.Error(p)
	}
	// One build target per function of the template, and no other.
	want := map[string]bool{}
	for id, r := range tpl["Resources"].(map[string]any) {
		if r.(map[string]any)["Type"] == "AWS::Serverless::Function" {
			want[id] = true
		}
	}
	if got := infra.ParseSAMMakefile(mk).Targets; len(want) != 5 || !maps.Equal(got, want) {
		t.Errorf("the Makefile's build targets: %v, want the template's five functions' %v", got, want)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "template.yaml"))
	for _, stale := range []string{"infra/", "sam.mk", "SAM_ARCH", "CodeUri: ..", "repository root"} {
		if bytes.Contains(b, []byte(stale)) {
			t.Errorf("the application's template still says %q", stale)
		}
	}
	if lint, err := exec.LookPath("cfn-lint"); err == nil {
		if out, err := exec.Command(lint, filepath.Join(dir, "template.yaml")).CombinedOutput(); err != nil {
			t.Errorf("cfn-lint: %v\n%s", err, out)
		}
	}
}

// TestWrite_NotEmpty: init never writes over a directory with files.
func TestWrite_NotEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, data); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("Write into a directory with a file: %v, want refused", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "keep.txt")); string(b) != "mine" {
		t.Error("the file was changed")
	}
}

// TestRewrite_Stale: a replacement that no longer matches wsbind's file
// is an error, not a template that quietly keeps the old text.
func TestRewrite_Stale(t *testing.T) {
	if _, err := rewrite("f", []byte("a b"), "a", "x", "c", "y"); err == nil || !strings.Contains(err.Error(), `"c"`) {
		t.Errorf("rewrite with a pair that does not match: %v, want an error naming it", err)
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{"example.com/my-app": "my_app", "todo": "todo", "github.com/x/Board2": "board2", "x/---": "___"} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestExamples_UpToDate: the example applications carry what wsbind init
// makes today (the template, build image, Makefile and mains), so they
// deploy what wsbind tests. UPDATE_EXAMPLES=1 rewrites them.
func TestExamples_UpToDate(t *testing.T) {
	_, here, _, _ := runtime.Caller(0)
	mods, _ := filepath.Glob(filepath.Join(filepath.Dir(here), "..", "..", "..", "examples", "*", "go.mod"))
	if len(mods) == 0 {
		t.Fatal("no examples/*/go.mod")
	}
	for _, mod := range mods {
		dir := filepath.Dir(mod)
		b, err := os.ReadFile(mod)
		if err != nil {
			t.Fatal(err)
		}
		path, _, _ := strings.Cut(strings.TrimPrefix(string(b), "module "), "\n")
		if !strings.Contains(string(b), "\nreplace github.com/wsbind/wsbind => ../..\n") {
			t.Errorf("%s: want replace github.com/wsbind/wsbind => ../.. (the checkout)", mod)
		}
		files, err := Files(Data{Module: path, Name: Name(path), GoVersion: "1.26", Version: "v0.0.0"})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"template.yaml", "Containerfile", "Makefile", ".gitignore",
			"functions/connect/main.go", "functions/route/main.go", "functions/streamfanout/main.go"} {
			p := filepath.Join(dir, filepath.FromSlash(name))
			got, err := os.ReadFile(p)
			if err == nil && bytes.Equal(got, files[name]) {
				continue
			}
			if os.Getenv("UPDATE_EXAMPLES") != "" {
				if err := os.WriteFile(p, files[name], 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			t.Errorf("%s differs from what wsbind init makes now (UPDATE_EXAMPLES=1 go test ./internal/tool/scaffold rewrites it)", p)
		}
	}
}
