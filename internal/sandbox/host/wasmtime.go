//go:build wsbind_wasmtime

package host

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/wsbind/wsbind/internal/sandbox/abi"
)

// WasmtimeConfig configures the wasmtime engine. The zero value works.
type WasmtimeConfig struct {
	// MemoryLimitPages caps each guest's linear memory, in 64 KiB pages.
	// 0 means 2048 (128 MiB).
	MemoryLimitPages uint32
	// Stderr receives what guests print (a Go panic's message, say). nil
	// means the process's own stderr, which guests then write to
	// directly. wasmtime only writes guest output to files, so any other
	// writer is fed from a pipe by a goroutine: output reaches it shortly
	// after the guest wrote it, not before the call returns. (The guests
	// open the pipe as /dev/fd/N: Linux and macOS.)
	Stderr io.Writer
	// GuestEnv is the guests' environment, KEY=VALUE: what a guest reads
	// with os.Getenv (never the host's own).
	GuestEnv []string
	// MessageTimeout bounds each call into a guest, _initialize included;
	// a context deadline that comes sooner wins. 0 means 30 s. Guest code
	// past it is stopped within 10 ms (wasmtime's epoch interruption,
	// checked in every loop and function), and host calls it makes get a
	// context that ends with it. A cancellation without a deadline reaches
	// only host calls: the epoch cannot see it.
	MessageTimeout time.Duration
	// Portable compiles for every CPU of this architecture, instead of
	// for this machine's CPU and its extensions: for Precompile on a build
	// machine, when the code will run on other machines. Code compiled
	// for one CPU fails to load (an error) on a CPU that lacks one of the
	// extensions it uses; portable code loads on any, in any engine of
	// this package (Portable or not), and runs as fast within this
	// machine's measurement noise for the route guest. Linux and macOS,
	// on amd64 and arm64.
	Portable bool
}

// wasmtimeTick is how often the engine's epoch advances while guest code
// runs: the resolution of MessageTimeout.
const wasmtimeTick = 10 * time.Millisecond

// ErrMessageTimeout is the cause of a *TrapError for a guest call stopped
// by WasmtimeConfig.MessageTimeout.
var ErrMessageTimeout = errors.New("guest ran past its message timeout")

// Wasmtime is the wasmtime engine: one wasmtime Engine, compiling with
// Cranelift ahead of time, with epoch interruption and the goroutine that
// advances the epoch. Unlike wazero's runtime, an Engine holds no
// instances: each instance gets a Store of its own, with its own WASI
// context and memory limit, and a Linker binding its imports.
type Wasmtime struct {
	cfg WasmtimeConfig

	// mu guards engine against Close while modules are compiled, loaded
	// or instantiated.
	mu     sync.RWMutex
	engine *wasmtime.Engine // nil once closed

	// The epoch advances only while guest code runs: tick is a timer
	// armed while calls (active) are in progress, and stopped when the
	// last one ends. An epoch that advanced all the time would wake the
	// process every tick, and each of wasmtime's cgo calls that wakes the
	// Go runtime's sysmon sets it polling every 20 µs for a while: about
	// 19 ms of CPU a second in an idle bootstrap (a quarter of a 128 MB
	// Lambda function's share of a CPU), for nothing.
	tickMu sync.Mutex
	tick   *time.Timer
	active int  // calls in progress, across the engine's instances
	closed bool // by Close: the timer may no longer touch the engine

	stderr *os.File // the pipe's write end, when Stderr is a writer
}

// portableTargets are the target triples of Portable, by GOOS/GOARCH.
var portableTargets = map[string]string{
	"linux/amd64":  "x86_64-unknown-linux-gnu",
	"linux/arm64":  "aarch64-unknown-linux-gnu",
	"darwin/amd64": "x86_64-apple-darwin",
	"darwin/arm64": "aarch64-apple-darwin",
}

// NewWasmtime makes an engine and starts advancing its epoch.
func NewWasmtime(cfg WasmtimeConfig) (*Wasmtime, error) {
	if cfg.MemoryLimitPages == 0 {
		cfg.MemoryLimitPages = 2048
	}
	if cfg.MessageTimeout <= 0 {
		cfg.MessageTimeout = 30 * time.Second
	}
	c := wasmtime.NewConfig()
	c.SetStrategy(wasmtime.StrategyCranelift)
	c.SetCraneliftOptLevel(wasmtime.OptLevelSpeed)
	c.SetEpochInterruption(true)
	if cfg.Portable {
		// A target set explicitly turns off the detection of this CPU's
		// extensions: the code assumes the architecture's baseline.
		triple := portableTargets[runtime.GOOS+"/"+runtime.GOARCH]
		if triple == "" {
			c.Close()
			return nil, fmt.Errorf("portable code: no target for %s/%s", runtime.GOOS, runtime.GOARCH)
		}
		if err := c.SetTarget(triple); err != nil {
			c.Close()
			return nil, fmt.Errorf("portable code: %w", wasmtimeError(err))
		}
	}

	w := &Wasmtime{cfg: cfg}
	if cfg.Stderr != nil && cfg.Stderr != os.Stderr {
		r, pw, err := os.Pipe()
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("guest stderr: %w", err)
		}
		// The copy ends when the last guest holding the pipe is closed
		// after the engine is.
		go func() {
			defer r.Close()
			_, _ = io.Copy(cfg.Stderr, r)
		}()
		w.stderr = pw
	}
	w.engine = wasmtime.NewEngineWithConfig(c)
	w.tick = time.AfterFunc(time.Hour, w.advanceEpoch)
	w.tick.Stop()
	return w, nil
}

// callStarted and callEnded bracket guest code: while any runs, the
// epoch advances every tick.
func (w *Wasmtime) callStarted() {
	w.tickMu.Lock()
	defer w.tickMu.Unlock()
	if w.active++; w.active == 1 && !w.closed {
		w.tick.Reset(wasmtimeTick)
	}
}

func (w *Wasmtime) callEnded() {
	w.tickMu.Lock()
	defer w.tickMu.Unlock()
	if w.active--; w.active == 0 {
		w.tick.Stop()
	}
}

// advanceEpoch is the timer's: one tick, and the next while guest code
// runs. A tick that comes late, just after the last call ended, does no
// harm: a deadline is one tick longer than the limit it holds.
func (w *Wasmtime) advanceEpoch() {
	w.tickMu.Lock()
	defer w.tickMu.Unlock()
	if w.closed || w.active == 0 {
		return
	}
	w.engine.IncrementEpoch()
	w.tick.Reset(wasmtimeTick)
}

// Close stops the epoch and releases the engine. Close its modules and
// instances first: an instance left open runs without a time limit.
func (w *Wasmtime) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.engine == nil {
		return nil
	}
	w.tickMu.Lock()
	w.closed = true
	w.tick.Stop()
	w.tickMu.Unlock()
	if w.stderr != nil {
		w.stderr.Close()
	}
	w.engine.Close()
	w.engine = nil
	return nil
}

var errClosed = errors.New("wasmtime engine is closed")

// Compile compiles a guest in memory.
func (w *Wasmtime) Compile(wasm []byte) (Module, error) {
	return w.module("compile guest", func(e *wasmtime.Engine) (*wasmtime.Module, error) {
		return wasmtime.NewModule(e, wasm)
	})
}

// module makes a module with the engine, unless it is closed; what
// failed is an error that starts with what.
func (w *Wasmtime) module(what string, newModule func(*wasmtime.Engine) (*wasmtime.Module, error)) (Module, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.engine == nil {
		return nil, errClosed
	}
	m, err := newModule(w.engine)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, wasmtimeError(err))
	}
	return &wasmtimeModule{w: w, m: m}, nil
}

// A precompiled module, as Precompile makes it and Load reads it, is
// wasmtime's serialized module (an ELF file of machine code for this
// host, the ".cwasm" of `wasmtime compile`) followed by a trailer that
// wasmtime ignores:
//
//	cwasmMagic                      8 bytes, "wsbind" 0x00 0x01
//	CRC-32C of everything before    4 bytes, little-endian (Castagnoli)
//
// wasmtime checks that a file is an ELF of its own version and of the
// engine's settings, but trusts the code inside: a flipped byte there
// loads fine and then crashes the process. The checksum turns such a
// file into an error. It guards against accidents (a truncated upload, a
// bad disk), not against an attacker, who can write a valid one.
const (
	cwasmMagic   = "wsbind\x00\x01"
	cwasmTrailer = len(cwasmMagic) + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Precompile compiles a guest ahead of time and returns the precompiled
// module, for Load or LoadBytes in an engine of the same wasmtime
// version, on this machine's kind of CPU (or any CPU of its architecture,
// with WasmtimeConfig.Portable).
func (w *Wasmtime) Precompile(wasm []byte) ([]byte, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.engine == nil {
		return nil, errClosed
	}
	m, err := wasmtime.NewModule(w.engine, wasm)
	if err != nil {
		return nil, fmt.Errorf("compile guest: %w", wasmtimeError(err))
	}
	defer m.Close()
	b, err := m.Serialize()
	if err != nil {
		return nil, fmt.Errorf("serialize guest: %w", wasmtimeError(err))
	}
	sum := crc32.Checksum(b, castagnoli)
	b = append(b, cwasmMagic...)
	return binary.LittleEndian.AppendUint32(b, sum), nil
}

// Load loads a precompiled module from a file, which wasmtime maps into
// memory rather than reads: the code is paged in as it runs, and shared
// between processes. The file is checked first (see Precompile); a file
// that is not a precompiled module of this engine is an error.
//
// The file must not change while the module is open: writing into a
// mapped file makes the process crash with SIGBUS when it next touches
// the changed pages. Replace it by renaming a new file over it.
func (w *Wasmtime) Load(path string) (Module, error) {
	if err := checkPrecompiledFile(path); err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	// wasmtime's message names the file.
	return w.module("load guest", func(e *wasmtime.Engine) (*wasmtime.Module, error) {
		return wasmtime.NewModuleDeserializeFile(e, path)
	})
}

// LoadBytes loads a precompiled module from memory (wasmtime copies it).
func (w *Wasmtime) LoadBytes(b []byte) (Module, error) {
	if err := checkPrecompiled(b); err != nil {
		return nil, fmt.Errorf("load guest: %w", err)
	}
	return w.module("load guest", func(e *wasmtime.Engine) (*wasmtime.Module, error) {
		return wasmtime.NewModuleDeserialize(e, b)
	})
}

var errNotPrecompiled = errors.New("not a precompiled wsbind module (no trailer)")

// checkPrecompiled checks a precompiled module's trailer and checksum.
func checkPrecompiled(b []byte) error {
	n := len(b) - cwasmTrailer
	if n < 0 || string(b[n:n+len(cwasmMagic)]) != cwasmMagic {
		return errNotPrecompiled
	}
	if crc32.Checksum(b[:n], castagnoli) != binary.LittleEndian.Uint32(b[n+len(cwasmMagic):]) {
		return errors.New("precompiled module is corrupt (checksum mismatch)")
	}
	return nil
}

// checkPrecompiledFile is checkPrecompiled on a file, read in chunks.
func checkPrecompiledFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	n := st.Size() - int64(cwasmTrailer)
	if n < 0 || !st.Mode().IsRegular() {
		return errNotPrecompiled
	}
	trailer := make([]byte, cwasmTrailer)
	if _, err := f.ReadAt(trailer, n); err != nil {
		return err
	}
	if string(trailer[:len(cwasmMagic)]) != cwasmMagic {
		return errNotPrecompiled
	}
	h := crc32.New(castagnoli)
	if _, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, n), make([]byte, 1<<20)); err != nil {
		return err
	}
	if h.Sum32() != binary.LittleEndian.Uint32(trailer[len(cwasmMagic):]) {
		return errors.New("precompiled module is corrupt (checksum mismatch)")
	}
	return nil
}

type wasmtimeModule struct {
	w *Wasmtime
	m *wasmtime.Module
}

func (m *wasmtimeModule) Close(context.Context) error {
	m.m.Close()
	return nil
}

// NewInstance makes a Store with the guest's WASI context and memory
// limit, links WASI and the wsbind host functions (bound to this
// instance), instantiates the module and runs its _initialize. A Linker
// per instance (~0.14 ms of the route guest's ~1.5 ms start-up here,
// mostly defining WASI) lets each host function hold its instance, where
// a shared one would have to find it on every host call.
func (m *wasmtimeModule) NewInstance(ctx context.Context) (Instance, error) {
	w := m.w
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.engine == nil {
		return nil, errClosed
	}

	store := wasmtime.NewStore(w.engine)
	store.Limiter(int64(w.cfg.MemoryLimitPages)*65536, -1, -1, -1, -1)
	wasi, err := w.wasiConfig()
	if err != nil {
		store.Close()
		return nil, err
	}
	store.SetWasi(wasi)
	i := &wasmtimeInstance{w: w, store: store, exports: map[string]*wasmtime.Func{}}

	linker := wasmtime.NewLinker(w.engine)
	defer linker.Close() // the instance keeps what it needs
	if err := i.link(linker); err != nil {
		store.Close()
		return nil, err
	}
	// Instantiation runs guest code too (_initialize, a start function):
	// under the same time limit as a call.
	if _, err := i.run(ctx, func() ([]byte, error) { return nil, i.instantiate(linker, m.m) }); err != nil {
		store.Close()
		return nil, err
	}
	return i, nil
}

// instantiate instantiates mod in i's store, finds the exports every call
// uses, and runs _initialize.
func (i *wasmtimeInstance) instantiate(l *wasmtime.Linker, mod *wasmtime.Module) error {
	inst, err := l.Instantiate(i.store, mod)
	if err != nil {
		return err
	}
	i.inst = inst
	if mem := inst.GetExport(i.store, "memory"); mem != nil {
		i.mem = mem.Memory()
	}
	if i.mem == nil {
		return errors.New("guest does not export its memory")
	}
	if i.alloc = inst.GetFunc(i.store, abi.ExportAlloc); i.alloc == nil {
		return errors.New("guest does not export " + abi.ExportAlloc)
	}
	if init := inst.GetFunc(i.store, "_initialize"); init != nil {
		_, err = init.Call(i.store)
	}
	return err
}

// wasiConfig is what wazero's module config gives a guest: the
// environment, stderr, and otherwise wasmtime's defaults, which already
// are the real clocks, a cryptographic random source, no arguments, an
// empty stdin, a discarded stdout and no files.
func (w *Wasmtime) wasiConfig() (*wasmtime.WasiConfig, error) {
	c := wasmtime.NewWasiConfig()
	var keys, values []string
	for _, kv := range w.cfg.GuestEnv {
		if k, v, ok := strings.Cut(kv, "="); ok {
			keys = append(keys, k)
			values = append(values, v)
		}
	}
	c.SetEnv(keys, values)
	if w.stderr == nil {
		c.InheritStderr()
	} else if err := c.SetStderrFile(fmt.Sprintf("/dev/fd/%d", w.stderr.Fd())); err != nil {
		c.Close()
		return nil, fmt.Errorf("guest stderr: %w", err)
	}
	return c, nil
}

type wasmtimeInstance struct {
	w       *Wasmtime
	store   *wasmtime.Store // nil once closed
	inst    *wasmtime.Instance
	mem     *wasmtime.Memory
	alloc   *wasmtime.Func
	exports map[string]*wasmtime.Func

	// ctx is the call in progress, for its host calls.
	ctx context.Context
	// hostErr is why a host call made the guest trap (its result could
	// not be handed back), reported by the call in progress.
	hostErr error
	// dead is the error that ended the instance.
	dead error
}

// link defines WASI and the wsbind host functions in l, bound to i.
func (i *wasmtimeInstance) link(l *wasmtime.Linker) error {
	if err := l.DefineWasi(); err != nil {
		return wasmtimeError(err)
	}
	i32, i64 := wasmtime.NewValType(wasmtime.KindI32), wasmtime.NewValType(wasmtime.KindI64)
	call := wasmtime.NewFuncType([]*wasmtime.ValType{i32, i32}, []*wasmtime.ValType{i64})
	now := wasmtime.NewFuncType(nil, []*wasmtime.ValType{i64})
	for fn := range abi.Func(len(abi.Funcs)) {
		var err error
		if fn == abi.FuncNow {
			err = l.FuncNew(abi.Module, abi.Funcs[fn], now, func(*wasmtime.Caller, []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
				return []wasmtime.Val{wasmtime.ValI64(servicesOf(i.ctx).now())}, nil
			})
		} else {
			err = l.FuncNew(abi.Module, abi.Funcs[fn], call, i.hostFunc(fn))
		}
		if err != nil {
			return wasmtimeError(err)
		}
	}
	return nil
}

// hostFunc adapts Services.Dispatch to a wasm import, as wazero.go's
// hostFunc does: read the request from guest memory, dispatch, and hand
// the result back through the guest's own allocator.
func (i *wasmtimeInstance) hostFunc(fn abi.Func) func(*wasmtime.Caller, []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	result := func(st abi.Status, n uint32) ([]wasmtime.Val, *wasmtime.Trap) {
		return []wasmtime.Val{wasmtime.ValI64(int64(abi.PackResult(st, n)))}, nil
	}
	return func(c *wasmtime.Caller, args []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
		ptr, n := uint32(args[0].I32()), uint32(args[1].I32())
		mem := i.mem.UnsafeData(c)
		if uint64(ptr)+uint64(n) > uint64(len(mem)) {
			return result(abi.BadCall, 0)
		}
		// A copy, unlike wazero's view of its memory: guest memory is
		// not Go memory, and is unmapped when the instance closes, so a
		// service that kept a slice of the request (an item's data, a
		// frame to post) would read freed memory.
		req := append([]byte(nil), mem[ptr:ptr+n]...)
		st, res := servicesOf(i.ctx).Dispatch(i.ctx, fn, req)
		if i.ctx.Err() != nil {
			// The call's time ran out (or its caller gave up) while the
			// host worked: stop the guest now, as the epoch would as soon
			// as it ran again, rather than let it answer late.
			i.hostErr = errInterrupted
			return nil, wasmtime.NewTrap("wsbind: " + errInterrupted.Error())
		}
		if len(res) == 0 {
			return result(st, 0)
		}
		out, err := i.alloc.Call(c, int32(len(res)))
		if err != nil {
			// The guest trapped or exited inside its allocator (out of
			// memory, out of time): its runtime cannot go on. End the
			// call, and let Call report why.
			i.hostErr = err
			return nil, wasmtime.NewTrap("wsbind: " + abi.ExportAlloc + " failed in a host call")
		}
		optr, _ := out.(int32)
		mem = i.mem.UnsafeData(c) // the allocation may have grown it
		if uint64(uint32(optr))+uint64(len(res)) > uint64(len(mem)) {
			return result(abi.Failed, 0)
		}
		copy(mem[uint32(optr):], res)
		return result(st, uint32(len(res)))
	}
}

func (i *wasmtimeInstance) Call(ctx context.Context, export string, in []byte) ([]byte, error) {
	switch {
	case i.store == nil:
		return nil, &TrapError{Err: errors.New("instance is closed")}
	case i.dead != nil:
		return nil, &TrapError{Err: fmt.Errorf("instance used after a trap: %w", i.dead)}
	}
	f := i.exports[export]
	if f == nil {
		if f = i.inst.GetFunc(i.store, export); f == nil {
			return nil, &TrapError{Err: fmt.Errorf("guest does not export %q", export)}
		}
		i.exports[export] = f
	}
	return i.run(ctx, func() ([]byte, error) {
		res, err := i.alloc.Call(i.store, int32(len(in)))
		if err != nil {
			return nil, err
		}
		ptr, _ := res.(int32)
		mem := i.mem.UnsafeData(i.store)
		if uint64(uint32(ptr))+uint64(len(in)) > uint64(len(mem)) {
			return nil, errors.New("input does not fit the guest's buffer")
		}
		copy(mem[uint32(ptr):], in)
		if res, err = f.Call(i.store, ptr, int32(len(in))); err != nil {
			return nil, err
		}
		packed, ok := res.(int64)
		if !ok {
			return nil, fmt.Errorf("export %q returned %T, want an i64", export, res)
		}
		optr, n := abi.UnpackPtr(uint64(packed))
		mem = i.mem.UnsafeData(i.store)
		if uint64(optr)+uint64(n) > uint64(len(mem)) {
			return nil, errors.New("output outside the guest's memory")
		}
		return append([]byte(nil), mem[optr:optr+n]...), nil
	})
}

// run runs guest code under the call's time limit: the sooner of ctx's
// deadline and MessageTimeout, as an epoch deadline for the guest and a
// context deadline for its host calls. Any failure ends the instance and
// comes back as a *TrapError; so does a panic in a host function, which
// wasmtime-go carries across the guest's frames and raises again here.
func (i *wasmtimeInstance) run(ctx context.Context, guest func() ([]byte, error)) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("host function panicked: %v", p)
		}
		if err != nil {
			i.dead = err
			err = &TrapError{Err: err}
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	callCtx := ctx
	deadline, limited := ctx.Deadline() // limited: the caller's deadline is the limit
	if limit := time.Now().Add(i.w.cfg.MessageTimeout); !limited || limit.Before(deadline) {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithDeadline(ctx, limit)
		defer cancel()
		deadline, limited = limit, false
	}
	// While guest code runs, the epoch advances every tick at a time of
	// its own: one tick more than the limit holds gives the guest at
	// least all of it.
	i.store.SetEpochDeadline(uint64((time.Until(deadline)+wasmtimeTick-1)/wasmtimeTick) + 1)

	i.w.callStarted()
	defer i.w.callEnded()
	i.ctx, i.hostErr = callCtx, nil
	defer func() { i.ctx = nil }()
	if out, err = guest(); err != nil {
		return nil, i.failure(ctx, limited, err)
	}
	return out, nil
}

// errInterrupted is hostErr for a call whose context ended while a host
// function ran.
var errInterrupted = errors.New("interrupted during a host call")

// failure says why guest code failed. An interruption, by the epoch or
// in a host call, is the caller's context ending (limited: its deadline
// was the call's) or MessageTimeout; anything else is wasmtime's trap or
// exit as it is, or what a host call ran into.
func (i *wasmtimeInstance) failure(ctx context.Context, limited bool, err error) error {
	if i.hostErr != nil {
		err = i.hostErr
	}
	var trap *wasmtime.Trap
	if err != errInterrupted {
		if !errors.As(err, &trap) {
			return wasmtimeError(err)
		}
		if code := trap.Code(); code == nil || *code != wasmtime.Interrupt {
			return wasmtimeError(err)
		}
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("guest interrupted: %w", ctx.Err())
	case limited: // past the deadline, before ctx's timer noticed
		return fmt.Errorf("guest interrupted: %w", context.DeadlineExceeded)
	}
	return fmt.Errorf("guest interrupted: %w", ErrMessageTimeout)
}

func (i *wasmtimeInstance) Close(context.Context) error {
	if i.store != nil {
		i.store.Close()
		i.store = nil
	}
	return nil
}

// wasmtimeError makes one line of a wasmtime error's message, which is
// Rust's anyhow format: a context line, then "Caused by:" and numbered
// causes, then a Rust backtrace when RUST_BACKTRACE is set. A trap's
// context line is the guest's wasm backtrace (function numbers, for a
// stripped guest), dropped too. The error stays reachable with errors.As
// (a *wasmtime.Trap and its Frames, a *wasmtime.Error and its exit
// status).
func wasmtimeError(err error) error {
	if err == nil {
		return nil
	}
	return &oneLineError{err}
}

type oneLineError struct{ err error }

func (e *oneLineError) Error() string {
	msg, _, _ := strings.Cut(e.err.Error(), "\n\nStack backtrace:")
	head, causes, _ := strings.Cut(msg, "\n\nCaused by:\n")
	var parts []string
	if !strings.HasPrefix(head, "error while executing at wasm backtrace:") {
		parts = append(parts, strings.TrimSpace(head))
	}
	for line := range strings.SplitSeq(causes, "\n") {
		line = strings.TrimSpace(line)
		if n, rest, ok := strings.Cut(line, ": "); ok && strings.Trim(n, "0123456789") == "" {
			line = rest // a numbered cause
		}
		if line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, ": ")
}

func (e *oneLineError) Unwrap() error { return e.err }
