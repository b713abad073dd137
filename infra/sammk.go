package infra

import (
	"bufio"
	"bytes"
	"regexp"
	"strings"
)

// SAMMakefile is what Check needs to know of infra/sam.mk.
type SAMMakefile struct {
	// Targets holds the LogicalId of each build-<LogicalId> target.
	Targets map[string]bool
	// Handlers maps a LogicalId to the function its target builds
	// (sam_handler_<LogicalId>), which must be the function's Handler.
	Handlers map[string]string
	// DefaultArch is SAM_ARCH's default, in Lambda's names (arm64, x86_64).
	DefaultArch string
	// ArchFromTemplate says the targets build for the architecture the
	// template (or samconfig.toml) deploys, as an application's Makefile
	// does through wsbind build: it has no default of its own to agree.
	ArchFromTemplate bool
}

var (
	mkRule    = regexp.MustCompile(`^([^:=#\t][^:=#]*?)\s*::?(?:[^=]|$)`)
	mkHandler = regexp.MustCompile(`^sam_handler_(\w+)\s*:?=\s*(\S+)`)
	mkArch    = regexp.MustCompile(`^SAM_ARCH\s*\?=\s*(\S+)`)
	// A target whose recipe runs wsbind build without -arch.
	mkBuild = regexp.MustCompile(`(?i)\bwsbind\)?\s+build\b`)
)

// ParseSAMMakefile reads the build targets, the handler of each, and the
// default architecture of a makefile such as infra/sam.mk. It reads rules
// and assignments line by line; it does not expand variables.
func ParseSAMMakefile(data []byte) *SAMMakefile {
	mk := &SAMMakefile{Targets: map[string]bool{}, Handlers: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var line string
	for sc.Scan() {
		line += sc.Text()
		if strings.HasSuffix(line, `\`) {
			line = strings.TrimSuffix(line, `\`) + " "
			continue
		}
		l := line
		line = ""
		if strings.HasPrefix(l, "\t") {
			if mkBuild.MatchString(l) && !strings.Contains(l, "-arch") {
				mk.ArchFromTemplate = true
			}
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if m := mkHandler.FindStringSubmatch(l); m != nil {
			mk.Handlers[m[1]] = m[2]
			continue
		}
		if m := mkArch.FindStringSubmatch(l); m != nil {
			mk.DefaultArch = m[1]
			continue
		}
		if m := mkRule.FindStringSubmatch(l); m != nil {
			for _, target := range strings.Fields(m[1]) {
				if id, ok := strings.CutPrefix(target, "build-"); ok && id != "" {
					mk.Targets[id] = true
				}
			}
		}
	}
	return mk
}
