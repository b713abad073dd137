package emulator_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/wsbind/wsbind/internal/testkit/logcheck"
	"github.com/wsbind/wsbind/local/emulatortest"
)

// TestMain collects every line the emulators of the suite print (all of
// them start through emulatortest), and when the tests pass, checks each
// line: a JSON object; each invocation's line with the fields
// docs/operations.md lists (connection, request ids, stream, action,
// status, duration...) and its metrics; every embedded metric format
// document keeping the EMF specification (logcheck). Run whole, the
// suite must also have shown every function's line: the route's,
// connect's, the authorizer's and the fan-out's.
func TestMain(m *testing.M) {
	flag.Parse()
	f, err := os.CreateTemp("", "wsbind-emulator-logs-*.jsonl")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	emulatortest.LogTo(f) // an *os.File takes each line in one write
	code := m.Run()
	emulatortest.LogTo(nil)
	if code == 0 {
		code = checkLogs(f)
	}
	f.Close()
	if code == 0 && os.Getenv("WSBIND_KEEP_LOGS") == "" {
		os.Remove(f.Name()) // kept on failure, or when asked, to read
	}
	os.Exit(code)
}

func checkLogs(f *os.File) int {
	if _, err := f.Seek(0, 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rep, err := logcheck.CheckAll(f, logcheck.Options{EMF: true, Pushes: true})
	fmt.Printf("emulator logs: %d lines, %d with embedded metrics, invocations %v (%s)\n", rep.Lines, rep.EMF, rep.Invocations, f.Name())
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %d of %d lines the emulators printed fail the log checks; the first:\n%v\n", rep.BadLines, rep.Lines, err)
		return 1
	}
	whole := flag.Lookup("test.run").Value.String() == "" && flag.Lookup("test.skip").Value.String() == "" && !testing.Short()
	if whole {
		for fn := range logcheck.Fields {
			if rep.Invocations[fn] == 0 {
				fmt.Fprintf(os.Stderr, "FAIL: the suite ran whole, and no %s invocation line was printed\n", fn)
				return 1
			}
		}
	}
	return 0
}
