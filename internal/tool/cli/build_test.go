package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsbind/wsbind/internal/tool/scaffold"
)

// TestTargetArch: the architecture a build is for is the one the stack
// deploys (samconfig.toml's override, else the template's default); an
// -arch that differs is refused, naming where the other came from.
func TestTargetArch(t *testing.T) {
	tmpl, err := scaffold.Template("app")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, samconfig, flag, want, err string
	}{
		{name: "template default", want: "arm64"},
		{name: "flag agrees", flag: "arm64", want: "arm64"},
		{name: "flag differs from the template", flag: "x86_64", err: "-arch x86_64, but template.yaml (the Architecture parameter's default) deploys Architecture=arm64"},
		{name: "samconfig string", samconfig: "version = 0.1\n[default.deploy.parameters]\nparameter_overrides = \"Stage=\\\"v1\\\" Architecture=\\\"x86_64\\\"\"\n", want: "amd64"},
		{name: "samconfig list", samconfig: "version = 0.1\n[default.deploy.parameters]\nparameter_overrides = [\"Architecture=x86_64\", \"Engine=wazero\"]\n", want: "amd64"},
		{name: "samconfig global", samconfig: "version = 0.1\n[default.global.parameters]\nparameter_overrides = \"Architecture=x86_64\"\n", want: "amd64"},
		{name: "samconfig without it", samconfig: "version = 0.1\n[default.deploy.parameters]\nstack_name = \"s\"\n", want: "arm64"},
		{name: "other environment ignored", samconfig: "version = 0.1\n[prod.deploy.parameters]\nparameter_overrides = \"Architecture=x86_64\"\n", want: "arm64"},
		{name: "flag differs from samconfig", samconfig: "version = 0.1\n[default.deploy.parameters]\nparameter_overrides = \"Architecture=x86_64\"\n", flag: "arm64", err: "-arch arm64, but samconfig.toml (parameter_overrides) deploys Architecture=x86_64"},
		{name: "samconfig names no architecture", samconfig: "version = 0.1\n[default.deploy.parameters]\nparameter_overrides = \"Architecture=sparc\"\n", err: `samconfig.toml (parameter_overrides): architecture "sparc"`},
		{name: "broken samconfig", samconfig: "version = \n", err: "samconfig.toml: "},
		{name: "bad flag", flag: "i386", err: `-arch: architecture "i386": want arm64 or x86_64`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "template.yaml"), tmpl, 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.samconfig != "" {
				if err := os.WriteFile(filepath.Join(dir, "samconfig.toml"), []byte(tc.samconfig), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := targetArch(tc.flag, filepath.Join(dir, "template.yaml"))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	// No template: the flag, else arm64.
	if got, err := targetArch("x86_64", ""); got != "amd64" || err != nil {
		t.Errorf("no template, -arch x86_64: %q %v", got, err)
	}
	if got, err := targetArch("", ""); got != "arm64" || err != nil {
		t.Errorf("no template, no flag: %q %v", got, err)
	}
}
