package host_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/wsbind/wsbind/bindings"
	"github.com/wsbind/wsbind/internal/core/identity"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/core/store/memory"
	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/internal/sandbox/guest"
	"github.com/wsbind/wsbind/internal/sandbox/host"
	"github.com/wsbind/wsbind/internal/testkit/wasmbuild"
	"github.com/wsbind/wsbind/resource"
)

// Guest packages of the crash, pool and bench tests.
const (
	routePkg  = "github.com/wsbind/wsbind/functions/route"
	fanoutPkg = "github.com/wsbind/wsbind/functions/streamfanout"
	crashPkg  = "github.com/wsbind/wsbind/internal/sandbox/host/testguest/crash"
)

// compiledCache is one in-memory compilation cache for the whole test
// binary: every engine made by these tests shares it, so a guest is
// compiled once however many engines (each with its own memory cap or
// stderr) load it.
var compiledCache = sync.OnceValue(wazero.NewCompilationCache)

// sharedEngine is one default wazero engine for the whole test binary.
// It is never closed: the process owns it, and its modules are shared by
// every test and benchmark that runs the real guests.
var sharedEngine struct {
	mu   sync.Mutex
	eng  *host.Wazero
	mods map[string]host.Module
}

// sharedModule builds and compiles a guest package once per test binary.
func sharedModule(tb testing.TB, pkg string) host.Module {
	tb.Helper()
	sharedEngine.mu.Lock()
	defer sharedEngine.mu.Unlock()
	if m, ok := sharedEngine.mods[pkg]; ok {
		return m
	}
	wasm, err := wasmbuild.Build(pkg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	if sharedEngine.eng == nil {
		eng, err := host.NewWazero(ctx, host.WazeroConfig{Cache: compiledCache()})
		if err != nil {
			tb.Fatal(err)
		}
		sharedEngine.eng = eng
		sharedEngine.mods = map[string]host.Module{}
	}
	mod, err := sharedEngine.eng.Compile(ctx, wasm)
	if err != nil {
		tb.Fatal(err)
	}
	sharedEngine.mods[pkg] = mod
	return mod
}

// nativeApp is the three real guests' program linked into the host: the
// application's bindings under default settings.
func nativeApp(c guest.Caller) map[string]guest.Entry {
	return guest.All(c, bindings.Registry(resource.Settings{}))
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers (guest
// stderr, a logger shared by goroutines).
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// wsReply is a reply frame as a client reads it.
type wsReply struct {
	Stream  *string `json:"stream"`
	Payload struct {
		Action         *string         `json:"action"`
		Data           json.RawMessage `json:"data"`
		Errors         json.RawMessage `json:"errors"`
		ResponseStatus int             `json:"response_status"`
		RequestID      json.RawMessage `json:"request_id"`
	} `json:"payload"`
}

// parseReply decodes a reply frame; it reports a frame that is not one.
func parseReply(frame []byte) (wsReply, error) {
	var r wsReply
	if err := json.Unmarshal(frame, &r); err != nil {
		return r, fmt.Errorf("reply is not JSON: %v: %q", err, frame)
	}
	return r, nil
}

// question is a questions object as replies carry it.
type question struct {
	ID        string `json:"id"`
	Text      string `json:"question_text"`
	PubDate   string `json:"pub_date"`
	Published bool   `json:"published"`
}

func createFrame(text, requestID string) []byte {
	return fmt.Appendf(nil, `{"stream":"questions","payload":{"action":"create","data":{"question_text":%q},"request_id":%q}}`, text, requestID)
}

func retrieveFrame(id, requestID string) []byte {
	return fmt.Appendf(nil, `{"stream":"questions","payload":{"action":"retrieve","pk":%q,"request_id":%q}}`, id, requestID)
}

// checkQuestion checks a create or retrieve reply: its status, its echoed
// request_id, and its object's text; it returns the object.
func checkQuestion(frame []byte, action string, status int, text, requestID string) (question, error) {
	r, err := parseReply(frame)
	if err != nil {
		return question{}, err
	}
	p := r.Payload
	if r.Stream == nil || *r.Stream != "questions" || p.Action == nil || *p.Action != action ||
		p.ResponseStatus != status || string(p.RequestID) != fmt.Sprintf("%q", requestID) || string(p.Errors) != "[]" {
		return question{}, fmt.Errorf("%s: want %d echoing %q, got %s", action, status, requestID, frame)
	}
	var q question
	if err := json.Unmarshal(p.Data, &q); err != nil {
		return q, fmt.Errorf("%s: data: %v: %s", action, err, frame)
	}
	if q.ID == "" || q.Text != text || q.PubDate == "" || q.Published {
		return q, fmt.Errorf("%s: want text %q and an id, got %s", action, text, frame)
	}
	return q, nil
}

// hammer sends creates and retrieves from many goroutines through one
// pool of the route guest, with crash-guest panics interleaved through a
// second pool, and checks every reply and the store at the end.
func hammer(t *testing.T, route, crash host.Module, workers, pairs int) {
	ctx := context.Background()
	st := memory.New()
	logs := &lockedBuffer{}
	svc := &host.Services{Store: st, Subscribers: st, Conns: st, Log: slog.New(slog.NewTextHandler(logs, nil))}
	crashLogs := &lockedBuffer{}
	crashSvc := &host.Services{Log: slog.New(slog.NewTextHandler(crashLogs, nil))}

	pool := host.NewPool(route, 0)
	defer pool.Close(ctx)
	crashPool := host.NewPool(crash, 0)
	defer crashPool.Close(ctx)

	const panicEvery = 10
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		panics int
	)
	for g := range workers {
		wg.Go(func() {
			conn := fmt.Sprintf("conn-%d", g)
			user := identity.User{ID: fmt.Sprintf("user-%d", g)}
			for i := range pairs {
				text := fmt.Sprintf("g%d q%d", g, i)
				rid := fmt.Sprintf("g%d-%d-c", g, i)
				out := host.CallRoute(ctx, pool, svc, abi.Message{ConnID: conn, User: user, Frame: createFrame(text, rid)})
				q, err := checkQuestion(out, "create", 201, text, rid)
				if err != nil {
					t.Error(err)
					return
				}
				rid = fmt.Sprintf("g%d-%d-r", g, i)
				out = host.CallRoute(ctx, pool, svc, abi.Message{ConnID: conn, User: user, Frame: retrieveFrame(q.ID, rid)})
				got, err := checkQuestion(out, "retrieve", 200, text, rid)
				if err != nil {
					t.Error(err)
					return
				}
				if got != q {
					t.Errorf("retrieve %s: got %+v, created %+v", q.ID, got, q)
					return
				}
				if i%panicEvery != panicEvery-1 {
					continue
				}
				out = host.CallRoute(ctx, crashPool, crashSvc, abi.Message{ConnID: conn, User: user, Frame: []byte("panic")})
				if r, err := parseReply(out); err != nil || r.Payload.ResponseStatus != 500 {
					t.Errorf("crash guest panic: want a 500 reply, got %q (%v)", out, err)
					return
				}
				mu.Lock()
				panics++
				mu.Unlock()
				frame := fmt.Sprintf("%s %d", conn, i)
				if out := host.CallRoute(ctx, crashPool, crashSvc, abi.Message{ConnID: conn, Frame: []byte(frame)}); string(out) != "echo:"+frame {
					t.Errorf("crash guest after a panic: got %q, want %q", out, "echo:"+frame)
					return
				}
			}
		})
	}
	wg.Wait()

	n, err := st.Count(ctx, store.Part{Stream: "questions"})
	if err != nil {
		t.Fatal(err)
	}
	if want := workers * pairs; n != want {
		t.Errorf("questions stored: %d, want %d (one per create)", n, want)
	}
	if made := pool.Made(); made < 1 || made > workers {
		t.Errorf("route pool made %d instances for %d concurrent callers and no trap", made, workers)
	}
	if made := crashPool.Made(); made < panics+1 {
		t.Errorf("crash pool made %d instances for %d panics: a trapped instance was reused", made, panics)
	}
	if logs.String() != "" {
		t.Errorf("route guest logged:\n%s", logs)
	}
	if got := bytes.Count([]byte(crashLogs.String()), []byte("route guest failed")); got != panics {
		t.Errorf("host logged %d guest failures for %d panics:\n%s", got, panics, crashLogs)
	}
	t.Logf("%d workers × %d create+retrieve pairs, %d panics; route pool made %d instances, crash pool %d",
		workers, pairs, panics, pool.Made(), crashPool.Made())
}

func TestWazero_PoolHammer(t *testing.T) {
	route := sharedModule(t, routePkg)
	crash, _ := crashModule(t)
	start := time.Now()
	hammer(t, route, crash, 8, 100)
	t.Logf("hammer took %v", time.Since(start))
}

func TestNative_PoolHammer(t *testing.T) {
	hammer(t, host.NativeModule(nativeApp), host.NativeModule(nativeCrash), 8, 100)
}
