package router_test

import (
	"context"
	"flag"
	"testing"

	"github.com/wsbind/wsbind/internal/core/router"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/core/store/memory"
	"github.com/wsbind/wsbind/internal/testkit/protocoltest"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts")

// native serves the golden suite with the router linked into the test and
// the in-memory store: the baseline every other target must match byte for
// byte.
type native struct {
	t     *testing.T
	r     *router.Router
	store *memory.Store
}

func newNative(t *testing.T, env protocoltest.Env) protocoltest.Target {
	st := memory.New()
	return &native{t: t, store: st, r: router.New(router.Config{
		Registry: env.Registry,
		Store:    st,
		Now:      env.Now,
		Log:      testLogger{t},
	})}
}

func (n *native) Send(c protocoltest.Conn, frame []byte) []byte {
	return n.r.Handle(context.Background(), router.Conn{ID: c.ID, User: c.Identity()}, frame)
}

func (n *native) Put(stream string, it store.Item) { n.store.Put(stream, it) }

func (n *native) Flush() []protocoltest.Post {
	var out []protocoltest.Post
	for _, ch := range n.store.Changes() {
		posts, err := n.r.Fanout(context.Background(), n.store, router.Change(ch))
		if err != nil {
			n.t.Logf("fan-out skipped a change: %v", err)
			continue
		}
		for _, p := range posts {
			out = append(out, protocoltest.Post{ConnID: p.ConnID, Frame: p.Frame})
		}
	}
	return out
}

type testLogger struct{ t *testing.T }

func (l testLogger) Error(msg string, args ...any) { l.t.Log(append([]any{msg}, args...)...) }

func TestRouter_Golden(t *testing.T) {
	protocoltest.Run(t, newNative, *update)
}

// matrixPlayer plays the private-data matrix against the router and the
// memory store.
type matrixPlayer struct{ n *native }

func (p matrixPlayer) Send(c protocoltest.Conn, frame []byte) []byte { return p.n.Send(c, frame) }

func (p matrixPlayer) Pushes(map[string]int) map[string][][]byte {
	out := map[string][][]byte{}
	for _, post := range p.n.Flush() {
		out[post.ConnID] = append(out[post.ConnID], post.Frame)
	}
	return out
}

// TestRouter_PrivateMatrix runs the authorization matrix (every user
// times every action, on their own and on others' notes, with every
// push) against the model, and keeps its transcript as a golden file.
func TestRouter_PrivateMatrix(t *testing.T) {
	n := newNative(t, protocoltest.NewEnv()).(*native)
	got := protocoltest.PlayMatrix(t, matrixPlayer{n})
	protocoltest.Golden(t, "private_matrix", got, *update)
}
