package host_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/core/store/memory"
	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/internal/sandbox/guest"
	"github.com/wsbind/wsbind/internal/sandbox/host"
	"github.com/wsbind/wsbind/internal/testkit/protocoltest"
	"github.com/wsbind/wsbind/internal/testkit/protocoltest/testbindings"
	"github.com/wsbind/wsbind/internal/testkit/wasmbuild"
)

// recorder is a Poster that keeps what was posted, in order.
type recorder struct {
	mu    sync.Mutex
	posts []protocoltest.Post
}

func (r *recorder) Post(_ context.Context, frame []byte, ids []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		r.posts = append(r.posts, protocoltest.Post{ConnID: id, Frame: append([]byte(nil), frame...)})
	}
	return nil
}

func (r *recorder) take() []protocoltest.Post {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.posts
	r.posts = nil
	return out
}

// target plays a golden case through the host: route and fan-out run in
// a guest instance made fresh for the case, over the in-memory store.
type target struct {
	t     *testing.T
	pool  *host.Pool
	store *memory.Store
	posts *recorder
	svc   *host.Services
}

func newTarget(t *testing.T, mod host.Module, env protocoltest.Env) protocoltest.Target {
	st := memory.New()
	rec := &recorder{}
	tg := &target{t: t, pool: host.NewPool(mod, 1), store: st, posts: rec, svc: &host.Services{
		Store: st, Subscribers: st, Conns: st, Poster: rec, Now: env.Now,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}}
	t.Cleanup(func() { tg.pool.Close(context.Background()) })
	return tg
}

func (tg *target) Send(c protocoltest.Conn, frame []byte) []byte {
	return host.CallRoute(context.Background(), tg.pool, tg.svc, abi.Message{ConnID: c.ID, User: c.Identity(), Frame: frame})
}

func (tg *target) Put(stream string, it store.Item) { tg.store.Put(stream, it) }

func (tg *target) Flush() []protocoltest.Post {
	for _, ch := range tg.store.Changes() {
		if err := host.CallFanout(context.Background(), tg.pool, tg.svc, abi.Change(ch)); err != nil {
			tg.t.Errorf("fan-out: %v", err)
		}
	}
	return tg.posts.take()
}

// nativeGolden is the golden guest's program, linked into the host.
func nativeGolden(c guest.Caller) map[string]guest.Entry {
	reg := testbindings.Registry()
	return map[string]guest.Entry{abi.ExportRoute: guest.Route(c, reg), abi.ExportFanout: guest.Fanout(c, reg)}
}

func TestNative_Golden(t *testing.T) {
	protocoltest.Run(t, func(t *testing.T, env protocoltest.Env) protocoltest.Target {
		return newTarget(t, host.NativeModule(nativeGolden), env)
	}, false)
}

// wazeroModule compiles a guest package once per test binary.
func wazeroModule(t testing.TB, pkg string) host.Module {
	t.Helper()
	wasm, err := wasmbuild.Build(pkg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	eng, err := host.NewWazero(ctx, host.WazeroConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(ctx) })
	mod, err := eng.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

func TestWazero_Golden(t *testing.T) {
	mod := wazeroModule(t, "github.com/wsbind/wsbind/internal/sandbox/host/testguest/golden")
	protocoltest.Run(t, func(t *testing.T, env protocoltest.Env) protocoltest.Target {
		return newTarget(t, mod, env)
	}, false)
}

// matrixPlayer plays the private-data matrix through the host: every
// store call, subscriber lookup and post crosses the ABI.
type matrixPlayer struct{ tg *target }

func (p matrixPlayer) Send(c protocoltest.Conn, frame []byte) []byte { return p.tg.Send(c, frame) }

func (p matrixPlayer) Pushes(map[string]int) map[string][][]byte {
	out := map[string][][]byte{}
	for _, post := range p.tg.Flush() {
		out[post.ConnID] = append(out[post.ConnID], post.Frame)
	}
	return out
}

// TestNative_PrivateMatrix runs the authorization matrix through the ABI
// (native engine): scoped parts, every-scope reads, filters, roles, and a
// change whose connections get different pushes (create to one, update
// to another) posted as one host call per push.
func TestNative_PrivateMatrix(t *testing.T) {
	tg := newTarget(t, host.NativeModule(nativeGolden), protocoltest.NewEnv()).(*target)
	protocoltest.PlayMatrix(t, matrixPlayer{tg})
}

// TestWazero_PrivateMatrix is TestNative_PrivateMatrix in a wasm guest.
func TestWazero_PrivateMatrix(t *testing.T) {
	mod := wazeroModule(t, "github.com/wsbind/wsbind/internal/sandbox/host/testguest/golden")
	tg := newTarget(t, mod, protocoltest.NewEnv()).(*target)
	protocoltest.PlayMatrix(t, matrixPlayer{tg})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
