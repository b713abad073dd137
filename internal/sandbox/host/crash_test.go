package host_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/core/store/memory"
	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/internal/sandbox/guest"
	"github.com/wsbind/wsbind/internal/sandbox/host"
	"github.com/wsbind/wsbind/internal/testkit/wasmbuild"
)

// crashPages caps the crash guest's memory: 256 pages, 16 MiB.
const crashPages = 256

// crashModule compiles the crash guest in an engine of its own, with
// memory capped at crashPages and guest stderr captured in the returned
// buffer.
func crashModule(t *testing.T) (host.Module, *lockedBuffer) {
	t.Helper()
	return cappedModule(t, crashPkg)
}

// cappedModule compiles a guest in an interruptible engine of its own,
// with memory capped at crashPages and guest stderr captured in the
// returned buffer.
func cappedModule(t *testing.T, pkg string) (host.Module, *lockedBuffer) {
	t.Helper()
	stderr := &lockedBuffer{}
	return engineModule(t, pkg, host.WazeroConfig{MemoryLimitPages: crashPages, Stderr: stderr, Interruptible: true}), stderr
}

// engineModule compiles a guest in an engine of its own, configured by
// cfg. The compilation cache makes every compile after the first cheap.
func engineModule(t *testing.T, pkg string, cfg host.WazeroConfig) host.Module {
	t.Helper()
	wasm, err := wasmbuild.Build(pkg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg.Cache = compiledCache()
	eng, err := host.NewWazero(ctx, cfg)
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

// nativeCrash is the crash guest's route entry, linked into the host: it
// panics on the frame "panic" and otherwise echoes the frame.
func nativeCrash(guest.Caller) map[string]guest.Entry {
	return map[string]guest.Entry{abi.ExportRoute: func(in []byte) []byte {
		var m abi.Message
		if err := m.Decode(abi.NewReader(in)); err != nil {
			panic(err)
		}
		if string(m.Frame) == "panic" {
			panic("native crash guest: asked to panic")
		}
		return append([]byte("echo:"), m.Frame...)
	}}
}

// encodeMessage is a route entry's input, for Pool.Call.
func encodeMessage(frame string) []byte {
	var w abi.Writer
	m := abi.Message{ConnID: "conn-1", Frame: []byte(frame)}
	m.Encode(&w)
	return w.B
}

// crashHarness sends frames to one pool of the crash guest, as the route
// function's host does on Lambda.
type crashHarness struct {
	t    *testing.T
	pool *host.Pool
	svc  *host.Services
	logs *lockedBuffer
}

func newCrashHarness(t *testing.T, mod host.Module) *crashHarness {
	logs := &lockedBuffer{}
	h := &crashHarness{t: t, pool: host.NewPool(mod, 1), logs: logs,
		svc: &host.Services{Log: slog.New(slog.NewTextHandler(logs, nil))}}
	t.Cleanup(func() { h.pool.Close(context.Background()) })
	return h
}

func (h *crashHarness) send(ctx context.Context, frame string) []byte {
	return host.CallRoute(ctx, h.pool, h.svc, abi.Message{ConnID: "conn-1", Frame: []byte(frame)})
}

// echo sends a frame the guest answers, and checks the answer.
func (h *crashHarness) echo(frame string) {
	h.t.Helper()
	if out := h.send(context.Background(), frame); string(out) != "echo:"+frame {
		h.t.Fatalf("send %q: got %q, want %q", frame, out, "echo:"+frame)
	}
}

// internalError checks a reply is the 500 a trap answers.
func (h *crashHarness) internalError(out []byte) {
	h.t.Helper()
	r, err := parseReply(out)
	if err != nil {
		h.t.Fatal(err)
	}
	var errs []string
	if err := json.Unmarshal(r.Payload.Errors, &errs); err != nil {
		h.t.Fatalf("errors: %v: %s", err, out)
	}
	if r.Payload.ResponseStatus != 500 || len(errs) != 1 || errs[0] != "Internal Server Error" || string(r.Payload.Data) != "null" {
		h.t.Fatalf("want 500 [\"Internal Server Error\"], got %s", out)
	}
}

// trapThenRecover sends a frame that kills the instance, checks the 500
// reply and that the next message runs in a fresh instance, then does the
// same through Pool.Call to check the error is a *host.TrapError, which
// it returns.
func (h *crashHarness) trapThenRecover(frame string) *host.TrapError {
	h.t.Helper()
	h.echo("hello")
	made := h.pool.Made()
	h.internalError(h.send(context.Background(), frame))
	if !strings.Contains(h.logs.String(), "route guest failed") {
		h.t.Errorf("host log does not report the trap:\n%s", h.logs)
	}
	start := time.Now()
	h.echo("hello")
	h.t.Logf("first message after the trap, with a new instance: %v", time.Since(start))
	if got := h.pool.Made(); got != made+1 {
		h.t.Errorf("after a trap the pool made %d instances, want %d (one replacement)", got, made+1)
	}

	ctx := host.WithServices(context.Background(), h.svc)
	out, err := h.pool.Call(ctx, abi.ExportRoute, encodeMessage(frame))
	var trap *host.TrapError
	if !errors.As(err, &trap) {
		h.t.Fatalf("Pool.Call(%q) = %q, %v; want a *host.TrapError", frame, out, err)
	}
	if out != nil {
		h.t.Errorf("Pool.Call(%q) trapped but returned %q", frame, out)
	}
	h.echo("hello again")
	if got := h.pool.Made(); got != made+2 {
		h.t.Errorf("after two traps the pool made %d instances, want %d", got, made+2)
	}
	return trap
}

func TestWazero_CrashGuest(t *testing.T) {
	mod, stderr := crashModule(t)

	t.Run("normal messages under the cap", func(t *testing.T) {
		h := newCrashHarness(t, mod)
		h.echo("hello")
		// Each message allocates the input buffer, the decoded frame and
		// the reply: many more than 16 MiB in all, which the guest's
		// garbage collector keeps under the cap.
		big := strings.Repeat("x", 100<<10)
		for range 300 {
			h.echo(big)
		}
		if got := h.pool.Made(); got != 1 {
			t.Errorf("pool made %d instances for messages that do not trap", got)
		}
	})

	// The real route guest fits the cap too, with a store of hundreds of
	// objects and lists of a full page.
	t.Run("route guest under the cap", func(t *testing.T) {
		route, routeStderr := cappedModule(t, routePkg)
		st := memory.New()
		logs := &lockedBuffer{}
		svc := &host.Services{Store: st, Subscribers: st, Conns: st, Log: slog.New(slog.NewTextHandler(logs, nil))}
		pool := host.NewPool(route, 1)
		defer pool.Close(context.Background())
		send := func(frame []byte) []byte {
			return host.CallRoute(context.Background(), pool, svc, abi.Message{ConnID: "conn-1", Frame: frame})
		}
		text := strings.Repeat("x", 200)
		list := []byte(`{"stream":"questions","payload":{"action":"list","data":{"page":1},"request_id":"l"}}`)
		for i := range 300 {
			rid := strconv.Itoa(i)
			q, err := checkQuestion(send(createFrame(text, rid)), "create", 201, text, rid)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := checkQuestion(send(retrieveFrame(q.ID, rid)), "retrieve", 200, text, rid); err != nil {
				t.Fatal(err)
			}
			if r, err := parseReply(send(list)); err != nil || r.Payload.ResponseStatus != 200 {
				t.Fatalf("list: %+v, %v", r, err)
			}
		}
		if got := pool.Made(); got != 1 {
			t.Errorf("route guest trapped under the cap (%d instances made); stderr:\n%s", got, routeStderr)
		}
		if logs.String() != "" {
			t.Errorf("route guest logged:\n%s", logs)
		}
	})

	t.Run("panic", func(t *testing.T) {
		h := newCrashHarness(t, mod)
		before := len(stderr.String())
		trap := h.trapThenRecover("panic")
		t.Logf("trap: %v", trap)
		printed := stderr.String()[before:]
		t.Logf("guest stderr begins: %q", firstLine(printed))
		if !strings.Contains(printed, "panic: crash guest: asked to panic") {
			t.Errorf("guest stderr does not carry the panic:\n%s", printed)
		}
	})

	t.Run("oom", func(t *testing.T) {
		h := newCrashHarness(t, mod)
		before := len(stderr.String())
		start := time.Now()
		trap := h.trapThenRecover("oom")
		t.Logf("two out-of-memory traps and three echoes took %v", time.Since(start))
		t.Logf("trap: %v", trap)
		printed := stderr.String()[before:]
		t.Logf("guest stderr begins: %q", firstLine(printed))
		if !strings.Contains(printed, "out of memory") {
			t.Errorf("guest stderr does not report running out of memory:\n%s", printed)
		}
	})
}

func TestNative_CrashGuest(t *testing.T) {
	h := newCrashHarness(t, host.NativeModule(nativeCrash))
	trap := h.trapThenRecover("panic")
	if !strings.Contains(trap.Error(), "native crash guest: asked to panic") {
		t.Errorf("trap = %v; want the panic's value", trap)
	}
}

func TestWazero_Deadline(t *testing.T) {
	t.Run("context already done", func(t *testing.T) {
		mod, _ := crashModule(t)
		h := newCrashHarness(t, mod)
		h.echo("hello")
		made := h.pool.Made()

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		h.internalError(h.send(ctx, "hello"))
		h.echo("hello")
		if got := h.pool.Made(); got != made+1 {
			t.Errorf("after a cancelled call the pool made %d instances, want %d", got, made+1)
		}

		_, err := h.pool.Call(host.WithServices(ctx, h.svc), abi.ExportRoute, encodeMessage("hello"))
		var trap *host.TrapError
		if !errors.As(err, &trap) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Pool.Call with a cancelled context: %v; want a *host.TrapError for context.Canceled", err)
		}
		h.echo("hello")
		if got := h.pool.Made(); got != made+2 {
			t.Errorf("after two cancelled calls the pool made %d instances, want %d", got, made+2)
		}
	})

	// A guest entry that outlives its deadline: the real route guest
	// waiting on a store call that takes longer than the deadline (a
	// slow database). In an interruptible engine wazero closes the
	// instance when the context ends, and the guest traps as soon as it
	// runs again.
	t.Run("deadline during a call", func(t *testing.T) {
		st := memory.New()
		slow := &slowStore{Store: st}
		logs := &lockedBuffer{}
		svc := &host.Services{Store: slow, Subscribers: st, Conns: st, Log: slog.New(slog.NewTextHandler(logs, nil))}
		pool := host.NewPool(engineModule(t, routePkg, host.WazeroConfig{Interruptible: true}), 1)
		defer pool.Close(context.Background())
		route := func(ctx context.Context, frame []byte) []byte {
			return host.CallRoute(ctx, pool, svc, abi.Message{ConnID: "conn-1", Frame: frame})
		}
		if _, err := checkQuestion(route(context.Background(), createFrame("fast", "1")), "create", 201, "fast", "1"); err != nil {
			t.Fatal(err)
		}
		made := pool.Made()

		slow.setDelay(time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		out := route(ctx, createFrame("slow", "2"))
		if d := time.Since(start); d > 900*time.Millisecond {
			t.Errorf("the call outlived its 50ms deadline by %v", d-50*time.Millisecond)
		}
		r, err := parseReply(out)
		if err != nil || r.Payload.ResponseStatus != 500 {
			t.Fatalf("slow create: want 500, got %s (%v)", out, err)
		}
		if !strings.Contains(logs.String(), "route guest failed") || !strings.Contains(logs.String(), "deadline exceeded") {
			t.Errorf("host log does not report the deadline trap:\n%s", logs)
		}

		slow.setDelay(0)
		if _, err := checkQuestion(route(context.Background(), createFrame("after", "3")), "create", 201, "after", "3"); err != nil {
			t.Fatal(err)
		}
		if got := pool.Made(); got != made+1 {
			t.Errorf("after a deadline the pool made %d instances, want %d", got, made+1)
		}

		slow.setDelay(time.Second)
		ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		var w abi.Writer
		m := abi.Message{ConnID: "conn-1", Frame: createFrame("slow", "4")}
		m.Encode(&w)
		_, err = pool.Call(host.WithServices(ctx, svc), abi.ExportRoute, w.B)
		var trap *host.TrapError
		if !errors.As(err, &trap) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Pool.Call past its deadline: %v; want a *host.TrapError for context.DeadlineExceeded", err)
		}
		slow.setDelay(0)
		if _, err := checkQuestion(route(context.Background(), createFrame("after", "5")), "create", 201, "after", "5"); err != nil {
			t.Fatal(err)
		}
	})
}

// slowStore is a store whose creates take a while, or until the call's
// context ends, whichever comes first (a well-behaved database client).
type slowStore struct {
	*memory.Store
	delay time.Duration
}

func (s *slowStore) setDelay(d time.Duration) { s.delay = d }

func (s *slowStore) Create(ctx context.Context, p store.Part, it store.Item) error {
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Store.Create(ctx, p, it)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
