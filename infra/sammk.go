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
}

var (
	mkRule    = regexp.MustCompile(`^([^:=#\t][^:=#]*?)\s*::?(?:[^=]|$)`)
	mkHandler = regexp.MustCompile(`^sam_handler_(\w+)\s*:?=\s*(\S+)`)
	mkArch    = regexp.MustCompile(`^SAM_ARCH\s*\?=\s*(\S+)`)
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
		if strings.HasPrefix(l, "\t") || strings.HasPrefix(strings.TrimSpace(l), "#") {
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
