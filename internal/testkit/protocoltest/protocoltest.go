// Package protocoltest is the golden protocol suite: every row of
// the protocol (docs/protocol.md), and channels-api's own test cases, as
// transcripts of frames in and frames out. Any system that serves the
// protocol runs it through a Target: the native router here, the wasm
// guests in the host, the emulator over real WebSockets. Transcripts live
// in testdata/*.golden and are rewritten with go test -update.
package protocoltest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsbind/wsbind/internal/core/identity"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/testkit/protocoltest/testbindings"
	"github.com/wsbind/wsbind/resource"
)

// Conn is a client connection of a case: its id, its user's id ("" for
// an anonymous connection) and roles, and when its token expires (Unix
// seconds; 0: it carries no exp).
type Conn struct {
	ID      string
	User    string
	Roles   []string
	Expires int64
}

// Identity is the verified user the connection carries.
func (c Conn) Identity() identity.User {
	u := identity.User{ID: c.User, Roles: c.Roles}
	if c.Expires != 0 {
		u.Claims = map[string]string{"exp": strconv.FormatInt(c.Expires, 10)}
	}
	return u
}

// label is how a transcript names the connection's user: "-" for
// anonymous, the id, and its roles in braces.
func (c Conn) label() string {
	if c.User == "" {
		return "-"
	}
	s := c.User
	if len(c.Roles) > 0 {
		s += "{" + strings.Join(c.Roles, ",") + "}"
	}
	if c.Expires != 0 {
		s += "(exp " + time.Unix(c.Expires, 0).UTC().Format(time.RFC3339) + ")"
	}
	return s
}

// Post is a push delivered to a connection.
type Post struct {
	ConnID string
	Frame  []byte
}

// Target is a system under test, fresh for each case.
type Target interface {
	// Send delivers a frame from conn and returns its reply.
	Send(conn Conn, frame []byte) []byte
	// Put writes an item straight to the store, as a writer other than the
	// API would.
	Put(stream string, item store.Item)
	// Flush delivers the pushes of every change committed since the last
	// call, in commit order, and for each change in connection id order.
	Flush() []Post
}

// Env is what a target is built from. Every target of one case must use
// it, so that ids and timestamps are the same everywhere.
type Env struct {
	// Registry holds the application's bindings and the test bindings,
	// with deterministic ids.
	Registry *resource.Registry
	// Now is the case's clock: 2026-01-02T03:04:05Z, one second later at
	// every call.
	Now func() time.Time
}

// Start is the first time a case's clock reads.
var Start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// NewEnv returns a fresh Env: its id counter and clock start over.
func NewEnv() Env {
	var tick int
	return Env{
		Registry: testbindings.Registry(),
		Now: func() time.Time {
			t := Start.Add(time.Duration(tick) * time.Second)
			tick++
			return t
		},
	}
}

// Run plays every case against targets made by newTarget and compares the
// transcripts with the golden files; with update it rewrites them.
func Run(t *testing.T, newTarget func(t *testing.T, env Env) Target, update bool) {
	t.Helper()
	names := map[string]bool{}
	for _, c := range Cases() {
		if names[c.Name] {
			t.Fatalf("case %s declared twice", c.Name)
		}
		names[c.Name] = true
		t.Run(c.Name, func(t *testing.T) {
			Golden(t, c.Name, Play(c, newTarget(t, NewEnv())), update)
		})
	}
}

// Dir is the folder of the golden files.
func Dir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("protocoltest: no caller information")
	}
	return filepath.Join(filepath.Dir(file), "testdata")
}

// Play runs a case and returns its transcript:
//
//	# what the case shows
//	> conn user frame     a frame sent ("-" for an anonymous user)
//	< frame               its reply
//	= stream item         an item written straight to the store
//	~ conn frame          a push delivered to conn
func Play(c Case, tg Target) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(strings.TrimSpace(c.Doc), "\n") {
		fmt.Fprintf(&b, "# %s\n", strings.TrimSpace(line))
	}
	for _, s := range c.Steps {
		switch {
		case s.Put != nil:
			where := s.Put.Stream
			if s.Put.Item.Scope != "" {
				where += "#" + s.Put.Item.Scope
			}
			fmt.Fprintf(&b, "= %s %s %s\n", where, s.Put.Item.ID, abbreviate(s.Put.Item.Data))
			tg.Put(s.Put.Stream, s.Put.Item)
		default:
			fmt.Fprintf(&b, "> %s %s %s\n", s.Conn.ID, s.Conn.label(), abbreviate([]byte(s.Frame)))
			fmt.Fprintf(&b, "< %s\n", tg.Send(s.Conn, []byte(s.Frame)))
		}
		for _, p := range tg.Flush() {
			fmt.Fprintf(&b, "~ %s %s\n", p.ConnID, p.Frame)
		}
	}
	return b.Bytes()
}

// abbreviate shortens long inputs in a transcript; replies and pushes are
// always written whole.
func abbreviate(b []byte) string {
	const keep = 200
	if len(b) <= keep {
		return string(b)
	}
	return fmt.Sprintf("%s... (%d bytes)", b[:keep], len(b))
}

// diff shows the first differing lines.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n got: %s\nwant: %s", i+1, gl, wl)
		}
	}
	return "(same lines)"
}

// Golden compares got with testdata/<name>.golden; with update it rewrites
// the file.
func Golden(t *testing.T, name string, got []byte, update bool) {
	t.Helper()
	path := filepath.Join(Dir(), name+".golden")
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("transcript differs from %s\n%s", path, diff(string(want), string(got)))
	}
}
