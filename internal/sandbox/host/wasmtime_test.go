//go:build wsbind_wasmtime

package host_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/wsbind/wsbind/internal/core/identity"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/core/store/memory"
	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/internal/sandbox/host"
	"github.com/wsbind/wsbind/internal/testkit/protocoltest"
	"github.com/wsbind/wsbind/internal/testkit/wasmbuild"
)

// Guest packages of the wasmtime tests only.
const (
	goldenPkg = "github.com/wsbind/wsbind/internal/sandbox/host/testguest/golden"
	spinPkg   = "github.com/wsbind/wsbind/internal/sandbox/host/testguest/spin"
)

// sharedWasmtime is one default wasmtime engine for the whole test
// binary, never closed, with each guest precompiled once: engines of
// their own (a memory cap, a time limit, captured stderr) load the same
// code in milliseconds instead of compiling it again for seconds.
var sharedWasmtime struct {
	mu   sync.Mutex
	eng  *host.Wasmtime
	code map[string][]byte      // precompiled, by package
	mods map[string]host.Module // loaded in eng, by package
}

// wasmtimeShared returns the shared engine, made on first use.
func wasmtimeShared(tb testing.TB) *host.Wasmtime {
	tb.Helper()
	sharedWasmtime.mu.Lock()
	defer sharedWasmtime.mu.Unlock()
	if sharedWasmtime.eng == nil {
		eng, err := host.NewWasmtime(host.WasmtimeConfig{})
		if err != nil {
			tb.Fatal(err)
		}
		sharedWasmtime.eng = eng
		sharedWasmtime.code = map[string][]byte{}
		sharedWasmtime.mods = map[string]host.Module{}
	}
	return sharedWasmtime.eng
}

// wasmtimePrecompiled builds and precompiles a guest package once per
// test binary.
func wasmtimePrecompiled(tb testing.TB, pkg string) []byte {
	tb.Helper()
	eng := wasmtimeShared(tb)
	sharedWasmtime.mu.Lock()
	defer sharedWasmtime.mu.Unlock()
	if b, ok := sharedWasmtime.code[pkg]; ok {
		return b
	}
	wasm, err := wasmbuild.Build(pkg)
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	b, err := eng.Precompile(wasm)
	if err != nil {
		tb.Fatal(err)
	}
	if t, ok := tb.(*testing.T); ok { // not in a benchmark's output
		t.Logf("precompiled %s: %d KiB of wasm to %d KiB in %v", pkg, len(wasm)>>10, len(b)>>10, time.Since(start))
	}
	sharedWasmtime.code[pkg] = b
	return b
}

// wasmtimeModule is a guest loaded once in the shared engine.
func wasmtimeModule(tb testing.TB, pkg string) host.Module {
	tb.Helper()
	code := wasmtimePrecompiled(tb, pkg)
	sharedWasmtime.mu.Lock()
	defer sharedWasmtime.mu.Unlock()
	if m, ok := sharedWasmtime.mods[pkg]; ok {
		return m
	}
	m, err := sharedWasmtime.eng.LoadBytes(code)
	if err != nil {
		tb.Fatal(err)
	}
	sharedWasmtime.mods[pkg] = m
	return m
}

// wasmtimeEngineModule loads a guest in an engine of its own, configured
// by cfg; both are closed when the test ends.
func wasmtimeEngineModule(t *testing.T, pkg string, cfg host.WasmtimeConfig) host.Module {
	t.Helper()
	code := wasmtimePrecompiled(t, pkg)
	eng, err := host.NewWasmtime(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	mod, err := eng.LoadBytes(code)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mod.Close(context.Background()) })
	return mod
}

// waitForText waits for a guest's stderr to hold s: wasmtime's guests
// write to a pipe that a goroutine copies from, so the text arrives just
// after the call that wrote it returns. It returns what the buffer holds.
func waitForText(t *testing.T, buf *lockedBuffer, s string) string {
	t.Helper()
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(5 * time.Millisecond) {
		if got := buf.String(); strings.Contains(got, s) {
			return got
		}
	}
	t.Errorf("guest stderr does not hold %q:\n%s", s, buf)
	return buf.String()
}

// TestWasmtime_Golden plays the golden suite through the golden guest,
// compiled in memory: the transcripts are the native ones, byte for byte.
func TestWasmtime_Golden(t *testing.T) {
	wasm, err := wasmbuild.Build(goldenPkg)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := host.NewWasmtime(host.WasmtimeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	start := time.Now()
	mod, err := eng.Compile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close(context.Background())
	t.Logf("compiled the golden guest in %v", time.Since(start))
	protocoltest.Run(t, func(t *testing.T, env protocoltest.Env) protocoltest.Target {
		return newTarget(t, mod, env)
	}, false)
}

// TestWasmtime_RouteMatchesNative sends the same frames to the real route
// guest under wasmtime and to the same code linked natively, each over a
// store seeded alike: the replies are the same bytes.
func TestWasmtime_RouteMatchesNative(t *testing.T) {
	type side struct {
		pool *host.Pool
		svc  *host.Services
	}
	newSide := func(mod host.Module) side {
		st := memory.New()
		for _, id := range []string{"q1", "q2"} {
			st.Put("questions", store.Item{ID: id, Data: []byte(`{"id":"` + id + `","question_text":"Seeded ` + id + `","pub_date":"2026-01-02T03:04:05Z","published":false}`)})
		}
		pool := host.NewPool(mod, 1)
		t.Cleanup(func() { pool.Close(context.Background()) })
		return side{pool, &host.Services{Store: st, Subscribers: st, Conns: st,
			Now: func() time.Time { return protocoltest.Start }, Log: slog.New(slog.NewTextHandler(testWriter{t}, nil))}}
	}
	native, wasm := newSide(host.NativeModule(nativeApp)), newSide(wasmtimeModule(t, routePkg))
	succeeded := 0
	for i, frame := range []string{
		`{"stream":"questions","payload":{"action":"list","request_id":"r1"}}`,
		`{"stream":"questions","payload":{"action":"retrieve","pk":"q1"}}`,
		`{"stream":"questions","payload":{"action":"retrieve","pk":"nope"}}`,
		`{"stream":"questions","payload":{"action":"update","pk":"q1","data":{"question_text":"Updated"}}}`,
		`{"stream":"questions","payload":{"action":"publish","pk":"q2"}}`,
		`{"stream":"questions","payload":{"action":"report"}}`,
		`{"stream":"questions","payload":{"action":"subscribe","data":{"action":"update"}}}`,
		`{"stream":"questions","payload":{"action":"delete","pk":"q1"}}`,
		`{"stream":"questions","payload":{"action":"list","request_id":"r2"}}`,
		`{"stream":"notes","payload":{"action":"list"}}`,
		`{"stream":"nope","payload":{"action":"list"}}`,
		`{"stream":"questions","payload":{"action":"create","data":{}}}`,
		"\xff",
	} {
		m := abi.Message{ConnID: "c1", User: identity.User{ID: "u1", Claims: map[string]string{"role": "admin"}}, Frame: []byte(frame)}
		a := host.CallRoute(context.Background(), native.pool, native.svc, m)
		b := host.CallRoute(context.Background(), wasm.pool, wasm.svc, m)
		if !bytes.Equal(a, b) {
			t.Errorf("frame %d %s: native\n%s\nwasmtime\n%s", i, frame, a, b)
		}
		if r, err := parseReply(b); err == nil && r.Payload.ResponseStatus == 200 {
			succeeded++
		}
	}
	if succeeded != 9 { // not only errors, the same on both sides
		t.Errorf("%d frames succeeded, want 9", succeeded)
	}
	if made := wasm.pool.Made(); made != 1 {
		t.Errorf("the wasmtime pool made %d instances; the guest trapped", made)
	}
}

func TestWasmtime_CrashGuest(t *testing.T) {
	stderr := &lockedBuffer{}
	mod := wasmtimeEngineModule(t, crashPkg, host.WasmtimeConfig{MemoryLimitPages: crashPages, Stderr: stderr})

	t.Run("normal messages under the cap", func(t *testing.T) {
		h := newCrashHarness(t, mod)
		big := strings.Repeat("x", 100<<10)
		for range 300 {
			h.echo(big)
		}
		if got := h.pool.Made(); got != 1 {
			t.Errorf("pool made %d instances for messages that do not trap", got)
		}
	})

	t.Run("panic", func(t *testing.T) {
		h := newCrashHarness(t, mod)
		before := len(stderr.String())
		trap := h.trapThenRecover("panic")
		t.Logf("trap: %v", firstLine(trap.Error()))
		printed := waitForText(t, stderr, "panic: crash guest: asked to panic")[before:]
		t.Logf("guest stderr begins: %q", firstLine(printed))
	})

	t.Run("oom", func(t *testing.T) {
		h := newCrashHarness(t, mod)
		before := len(stderr.String())
		start := time.Now()
		trap := h.trapThenRecover("oom")
		t.Logf("two out-of-memory traps and three echoes took %v", time.Since(start))
		t.Logf("trap: %v", firstLine(trap.Error()))
		var exit *wasmtime.Error
		if errors.As(trap, &exit) {
			if status, ok := exit.ExitStatus(); ok {
				t.Logf("guest exited with status %d", status)
			}
		}
		printed := waitForText(t, stderr, "out of memory")[before:]
		t.Logf("guest stderr begins: %q", firstLine(printed))
	})

	// A service that panics (a backend bug) fails the call like a trap,
	// as it does under wazero, instead of taking the host down.
	t.Run("host function panics", func(t *testing.T) {
		logs := &lockedBuffer{}
		svc := &host.Services{Store: panicStore{memory.New()}, Log: slog.New(slog.NewTextHandler(logs, nil))}
		pool := host.NewPool(wasmtimeModule(t, routePkg), 1)
		defer pool.Close(context.Background())
		_, err := pool.Call(host.WithServices(context.Background(), svc), abi.ExportRoute, encodeMessage(string(createFrame("boom", "1"))))
		var trap *host.TrapError
		if !errors.As(err, &trap) || !strings.Contains(err.Error(), "store exploded") {
			t.Fatalf("Pool.Call with a panicking store: %v; want a *host.TrapError carrying the panic", err)
		}
		svc.Store = memory.New()
		out := host.CallRoute(context.Background(), pool, svc, abi.Message{ConnID: "conn-1", Frame: createFrame("fine", "2")})
		if _, err := checkQuestion(out, "create", 201, "fine", "2"); err != nil {
			t.Fatal(err)
		}
	})
}

// panicStore is a store whose creates panic.
type panicStore struct{ *memory.Store }

func (panicStore) Create(context.Context, store.Part, store.Item) error {
	panic("store exploded")
}

func TestWasmtime_TimeLimit(t *testing.T) {
	const limit = 200 * time.Millisecond
	// The epoch advances every 10 ms; the bound leaves room for a busy
	// machine (the race detector, a parallel test run).
	const slack = 500 * time.Millisecond

	// spin sends a frame that never returns and checks the call is
	// stopped between want and want+slack with a trap for cause, then
	// that the next message gets a fresh instance that answers it.
	spin := func(t *testing.T, h *crashHarness, ctx context.Context, want time.Duration, cause error) {
		t.Helper()
		h.echo("hello")
		made := h.pool.Made()
		start := time.Now()
		out, err := h.pool.Call(host.WithServices(ctx, h.svc), abi.ExportRoute, encodeMessage("spin"))
		took := time.Since(start)
		var trap *host.TrapError
		if !errors.As(err, &trap) || !errors.Is(err, cause) {
			t.Fatalf("spin: %q, %v; want a *host.TrapError for %v", out, err, cause)
		}
		if took < want || took > want+slack {
			t.Errorf("spin stopped after %v, want %v to %v", took, want, want+slack)
		}
		t.Logf("spin stopped after %v: %v", took, firstLine(err.Error()))
		h.echo("hello again")
		if got := h.pool.Made(); got != made+1 {
			t.Errorf("after the time limit the pool made %d instances, want %d", got, made+1)
		}
	}

	t.Run("message timeout", func(t *testing.T) {
		h := newCrashHarness(t, wasmtimeEngineModule(t, spinPkg, host.WasmtimeConfig{MessageTimeout: limit}))
		spin(t, h, context.Background(), limit, host.ErrMessageTimeout)
		// Through Route: a 500 for the client, and the trap logged.
		h.internalError(h.send(context.Background(), "spin"))
		if !strings.Contains(h.logs.String(), "route guest failed") {
			t.Errorf("host log does not report the trap:\n%s", h.logs)
		}
		h.echo("hello")
	})

	// The epoch advances only while guest code runs, on one timer for
	// the engine: two calls running at once must not make it advance
	// twice as fast, and a call that starts while another runs gets all
	// of its time too.
	t.Run("two at once", func(t *testing.T) {
		mod := wasmtimeEngineModule(t, spinPkg, host.WasmtimeConfig{MessageTimeout: limit})
		pool := host.NewPool(mod, 2)
		defer pool.Close(context.Background())
		svc := &host.Services{Log: slog.New(slog.NewTextHandler(&lockedBuffer{}, nil))}
		var wg sync.WaitGroup
		took := make([]time.Duration, 2)
		errs := make([]error, 2)
		for n := range 2 {
			wg.Go(func() {
				time.Sleep(time.Duration(n) * limit / 2) // the second starts mid-way through the first
				start := time.Now()
				_, errs[n] = pool.Call(host.WithServices(context.Background(), svc), abi.ExportRoute, encodeMessage("spin"))
				took[n] = time.Since(start)
			})
		}
		wg.Wait()
		for n := range 2 {
			if !errors.Is(errs[n], host.ErrMessageTimeout) {
				t.Errorf("spin %d: %v; want host.ErrMessageTimeout", n, errs[n])
			}
			if took[n] < limit || took[n] > limit+slack {
				t.Errorf("spin %d stopped after %v, want %v to %v", n, took[n], limit, limit+slack)
			}
		}
	})

	t.Run("context deadline sooner", func(t *testing.T) {
		h := newCrashHarness(t, wasmtimeEngineModule(t, spinPkg, host.WasmtimeConfig{}))
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		spin(t, h, ctx, limit, context.DeadlineExceeded)
	})

	t.Run("context already done", func(t *testing.T) {
		h := newCrashHarness(t, wasmtimeEngineModule(t, spinPkg, host.WasmtimeConfig{}))
		h.echo("hello")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := h.pool.Call(host.WithServices(ctx, h.svc), abi.ExportRoute, encodeMessage("hello"))
		var trap *host.TrapError
		if !errors.As(err, &trap) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Pool.Call with a cancelled context: %v; want a *host.TrapError for context.Canceled", err)
		}
		h.echo("hello")
	})

	// The real route guest waiting on a store call that outlives the
	// limit (a slow database): the store gets a context that ends with
	// the limit, and the guest is stopped as soon as it runs again.
	t.Run("host call past the limit", func(t *testing.T) {
		st := memory.New()
		slow := &slowStore{Store: st}
		logs := &lockedBuffer{}
		svc := &host.Services{Store: slow, Subscribers: st, Conns: st, Log: slog.New(slog.NewTextHandler(logs, nil))}
		pool := host.NewPool(wasmtimeEngineModule(t, routePkg, host.WasmtimeConfig{MessageTimeout: limit}), 1)
		defer pool.Close(context.Background())
		route := func(frame []byte) []byte {
			return host.CallRoute(context.Background(), pool, svc, abi.Message{ConnID: "conn-1", Frame: frame})
		}
		if _, err := checkQuestion(route(createFrame("fast", "1")), "create", 201, "fast", "1"); err != nil {
			t.Fatal(err)
		}
		made := pool.Made()

		slow.setDelay(10 * time.Second)
		start := time.Now()
		_, err := pool.Call(host.WithServices(context.Background(), svc), abi.ExportRoute, encodeMessage(string(createFrame("slow", "2"))))
		took := time.Since(start)
		var trap *host.TrapError
		if !errors.As(err, &trap) || !errors.Is(err, host.ErrMessageTimeout) {
			t.Fatalf("Pool.Call past the limit: %v; want a *host.TrapError for host.ErrMessageTimeout", err)
		}
		if took < limit || took > limit+slack {
			t.Errorf("the call stopped after %v, want %v to %v", took, limit, limit+slack)
		}
		t.Logf("stopped after %v: %v", took, err)
		slow.setDelay(0)
		if _, err := checkQuestion(route(createFrame("after", "3")), "create", 201, "after", "3"); err != nil {
			t.Fatal(err)
		}
		if got := pool.Made(); got != made+1 {
			t.Errorf("after the time limit the pool made %d instances, want %d", got, made+1)
		}
	})
}

// TestWasmtime_Env: guests see the environment they are given, as they
// do under wazero.
func TestWasmtime_Env(t *testing.T) {
	env := []string{"WSBIND_A=1", "WSBIND_B=x=y", "WSBIND_EMPTY=", "NOT_A_PAIR"}
	for _, e := range []struct {
		name string
		mod  host.Module
	}{
		{"wazero", engineModule(t, spinPkg, host.WazeroConfig{GuestEnv: env})},
		{"wasmtime", wasmtimeEngineModule(t, spinPkg, host.WasmtimeConfig{GuestEnv: env})},
	} {
		h := newCrashHarness(t, e.mod)
		for name, want := range map[string]string{
			"WSBIND_A": "env:1", "WSBIND_B": "env:x=y", "WSBIND_EMPTY": "env:", "NOT_A_PAIR": "unset", "HOME": "unset",
		} {
			if got := h.send(context.Background(), "env:"+name); string(got) != want {
				t.Errorf("%s: %s: got %q, want %q", e.name, name, got, want)
			}
		}
	}
}

// seal appends the trailer of a precompiled module (wasmtime.go: the
// magic, then the CRC-32C of what comes before), as Precompile does: the
// tests use it to make files that pass the checksum and fail in wasmtime.
func seal(b []byte) []byte {
	b = append(bytes.Clone(b), "wsbind\x00\x01"...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[:len(b)-8], crc32.MakeTable(crc32.Castagnoli)))
}

func TestWasmtime_PrecompileLoad(t *testing.T) {
	code := wasmtimePrecompiled(t, routePkg)
	eng, err := host.NewWasmtime(host.WasmtimeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "route.cwasm")
	if err := os.WriteFile(path, code, 0o644); err != nil {
		t.Fatal(err)
	}

	// A round trip through a file, and through memory: both answer.
	for _, load := range []struct {
		name string
		load func() (host.Module, error)
	}{
		{"Load", func() (host.Module, error) { return eng.Load(path) }},
		{"LoadBytes", func() (host.Module, error) { return eng.LoadBytes(code) }},
	} {
		start := time.Now()
		mod, err := load.load()
		if err != nil {
			t.Fatalf("%s: %v", load.name, err)
		}
		t.Logf("%s of %d KiB took %v", load.name, len(code)>>10, time.Since(start))
		st := memory.New()
		svc := &host.Services{Store: st, Subscribers: st, Conns: st, Log: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
		pool := host.NewPool(mod, 1)
		start = time.Now()
		if err := pool.Warm(context.Background()); err != nil {
			t.Fatalf("%s: %v", load.name, err)
		}
		t.Logf("%s: first instance in %v", load.name, time.Since(start))
		send := func(frame []byte) []byte {
			return host.CallRoute(context.Background(), pool, svc, abi.Message{ConnID: "conn-1", Frame: frame})
		}
		q, err := checkQuestion(send(createFrame("loaded", "1")), "create", 201, "loaded", "1")
		if err != nil {
			t.Fatalf("%s: %v", load.name, err)
		}
		if _, err := checkQuestion(send(retrieveFrame(q.ID, "2")), "retrieve", 200, "loaded", "2"); err != nil {
			t.Fatalf("%s: %v", load.name, err)
		}
		pool.Close(context.Background())
		mod.Close(context.Background())
	}

	// Files that are not precompiled modules of this engine: each is an
	// error, from Load and from LoadBytes, and never a crash. Flipped
	// bytes in the code itself load fine in wasmtime and crash the
	// process when run; the checksum stops them.
	wasm, err := wasmbuild.Build(routePkg)
	if err != nil {
		t.Fatal(err)
	}
	n := len(code) - 12 // wasmtime's part, without the trailer
	flip := func(at int) []byte {
		b := bytes.Clone(code)
		for i := at; i < at+64 && i < len(b); i++ {
			b[i] ^= 0x5a
		}
		return b
	}
	bad := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "not a precompiled"},
		{"wasm", wasm, "not a precompiled"},
		{"raw cwasm", code[:n], "not a precompiled"},
		{"truncated", code[:len(code)/2], "not a precompiled"},
		{"truncated trailer", code[:len(code)-3], "not a precompiled"},
		{"flipped header", flip(0), "checksum"},
		{"flipped code 1%", flip(n / 100), "checksum"},
		{"flipped code 37%", flip(n * 37 / 100), "checksum"},
		{"flipped code 40%", flip(n * 40 / 100), "checksum"},
		{"flipped metadata 97%", flip(n * 97 / 100), "checksum"},
		{"flipped checksum", flip(len(code) - 4), "checksum"},
		{"sealed wasm", seal(wasm), "ELF"},
		{"sealed truncated", seal(code[:n/2]), "ELF"},
		{"sealed for another engine", seal(foreignPrecompiled(t, wasm)), "compiled without epoch interruption"},
	}
	for i, tt := range bad {
		p := filepath.Join(dir, "bad", strings.ReplaceAll(tt.name, " ", "-")+".cwasm")
		if i == 0 {
			os.Mkdir(filepath.Dir(p), 0o755)
		}
		if err := os.WriteFile(p, tt.b, 0o644); err != nil {
			t.Fatal(err)
		}
		mod, err := eng.Load(p)
		if err == nil {
			mod.Close(context.Background())
			t.Errorf("Load(%s): no error", tt.name)
		} else if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load(%s): %v; want an error about %q", tt.name, err, tt.want)
		} else {
			t.Logf("Load(%s): %v", tt.name, firstLine(err.Error()))
		}
		if mod, err := eng.LoadBytes(tt.b); err == nil {
			mod.Close(context.Background())
			t.Errorf("LoadBytes(%s): no error", tt.name)
		}
	}
	for _, p := range []string{filepath.Join(dir, "missing.cwasm"), dir} {
		if _, err := eng.Load(p); err == nil {
			t.Errorf("Load(%s): no error", p)
		}
	}
}

// TestWasmtime_Portable: code precompiled for any CPU of the architecture
// loads in an engine made for this CPU, and runs.
func TestWasmtime_Portable(t *testing.T) {
	wasm, err := wasmbuild.Build(crashPkg)
	if err != nil {
		t.Fatal(err)
	}
	portable, err := host.NewWasmtime(host.WasmtimeConfig{Portable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer portable.Close()
	code, err := portable.Precompile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := wasmtimeShared(t).LoadBytes(code)
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close(context.Background())
	newCrashHarness(t, mod).echo("portable")
}

// foreignPrecompiled compiles wasm in an engine set up differently from
// the host's (no epoch interruption), as a file from another deployment
// would be.
func foreignPrecompiled(t *testing.T, wasm []byte) []byte {
	t.Helper()
	eng := wasmtime.NewEngine()
	defer eng.Close()
	m, err := wasmtime.NewModule(eng, wasm)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b, err := m.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWasmtime_Close: a closed engine refuses work instead of crashing.
func TestWasmtime_Close(t *testing.T) {
	code := wasmtimePrecompiled(t, crashPkg)
	eng, err := host.NewWasmtime(host.WasmtimeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	mod, err := eng.LoadBytes(code)
	if err != nil {
		t.Fatal(err)
	}
	h := newCrashHarness(t, mod)
	h.echo("hello")
	h.pool.Close(context.Background())
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	if err := eng.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := mod.NewInstance(context.Background()); err == nil {
		t.Error("NewInstance after Close: no error")
	}
	if _, err := eng.LoadBytes(code); err == nil {
		t.Error("LoadBytes after Close: no error")
	}
	if _, err := eng.Compile([]byte("\x00asm\x01\x00\x00\x00")); err == nil {
		t.Error("Compile after Close: no error")
	}
	mod.Close(context.Background())
}

func TestWasmtime_PoolHammer(t *testing.T) {
	route := wasmtimeModule(t, routePkg)
	crash := wasmtimeEngineModule(t, crashPkg, host.WasmtimeConfig{MemoryLimitPages: crashPages, Stderr: &lockedBuffer{}})
	start := time.Now()
	hammer(t, route, crash, 8, 100)
	t.Logf("hammer took %v", time.Since(start))
}

func init() {
	// BenchmarkRoute and BenchmarkFanout run on wasmtime too, beside the
	// native baseline and wazero.
	taggedBenchEngines = append(taggedBenchEngines, benchEngine{"engine=wasmtime",
		func(b *testing.B, pkg string) host.Module { return wasmtimeModule(b, pkg) }})
}
