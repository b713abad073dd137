package host

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wsbind/wsbind/internal/sandbox/abi"
)

// WazeroConfig configures the wazero engine. The zero value works.
type WazeroConfig struct {
	// MemoryLimitPages caps each guest's linear memory, in 64 KiB pages.
	// 0 means 2048 (128 MiB).
	MemoryLimitPages uint32
	// Cache is the compilation cache; nil means none (compile each time).
	Cache wazero.CompilationCache
	// Stderr receives what guests print (a Go panic's message, say). nil
	// means os.Stderr.
	Stderr io.Writer
	// GuestEnv is the guests' environment, KEY=VALUE: what a guest reads
	// with os.Getenv (never the host's own).
	GuestEnv []string
	// Interruptible makes a call's context cancellation stop a running
	// guest (wazero's CloseOnContextDone), at a price on every call: the
	// compiled code checks for it in each loop and function, and wazero
	// watches the context from a goroutine. The emulator wants it, to stop
	// a runaway guest; Lambda does not, since its timeout ends the whole
	// environment.
	Interruptible bool
}

// Wazero is the wazero engine: one runtime, its host module, and the
// modules compiled in it.
type Wazero struct {
	rt  wazero.Runtime
	cfg WazeroConfig
}

// NewWazero starts a runtime with WASI and the wsbind host functions.
func NewWazero(ctx context.Context, cfg WazeroConfig) (*Wazero, error) {
	if cfg.MemoryLimitPages == 0 {
		cfg.MemoryLimitPages = 2048
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	rc := wazero.NewRuntimeConfig().
		WithMemoryLimitPages(cfg.MemoryLimitPages).
		WithCloseOnContextDone(cfg.Interruptible)
	if cfg.Cache != nil {
		rc = rc.WithCompilationCache(cfg.Cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	b := rt.NewHostModuleBuilder(abi.Module)
	for fn := range abi.Func(len(abi.Funcs)) {
		if fn == abi.FuncNow {
			b.NewFunctionBuilder().
				WithGoFunction(api.GoFunc(func(ctx context.Context, stack []uint64) {
					stack[0] = uint64(servicesOf(ctx).now())
				}), nil, []api.ValueType{api.ValueTypeI64}).
				Export(abi.Funcs[fn])
			continue
		}
		b.NewFunctionBuilder().
			WithGoModuleFunction(hostFunc(fn), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}).
			Export(abi.Funcs[fn])
	}
	if _, err := b.Instantiate(ctx); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	return &Wazero{rt: rt, cfg: cfg}, nil
}

// allocs maps each live guest instance (api.Module) to its wsbind_alloc
// export. Looking an export up makes a new call engine, stack and all,
// every time; a host call that returns a result needs the allocator, so
// each instance's is made once, in NewInstance.
var allocs sync.Map

// hostFunc adapts Services.Dispatch to a wasm import: read the request
// from guest memory, dispatch, and hand the result back through the
// guest's own allocator.
func hostFunc(fn abi.Func) api.GoModuleFunc {
	return func(ctx context.Context, m api.Module, stack []uint64) {
		// wazero passes i32 arguments in 64-bit slots whose top half is
		// not guaranteed to be zero: cut every one.
		ptr, n := uint32(stack[0]), uint32(stack[1])
		req, ok := m.Memory().Read(ptr, n)
		if !ok {
			stack[0] = abi.PackResult(abi.BadCall, 0)
			return
		}
		st, res := servicesOf(ctx).Dispatch(ctx, fn, req)
		if len(res) == 0 {
			stack[0] = abi.PackResult(st, 0)
			return
		}
		alloc, ok := allocs.Load(m)
		if !ok { // not made by NewInstance: a test's module, say
			alloc = m.ExportedFunction(abi.ExportAlloc)
		}
		out, err := alloc.(api.Function).Call(ctx, uint64(len(res)))
		if err != nil || !m.Memory().Write(uint32(out[0]), res) {
			// The guest cannot take the result (out of memory, say): its
			// next step will fail; tell it the call failed.
			stack[0] = abi.PackResult(abi.Failed, 0)
			return
		}
		stack[0] = abi.PackResult(st, uint32(len(res)))
	}
}

// Compile compiles a guest (or loads it from the compilation cache).
func (w *Wazero) Compile(ctx context.Context, wasm []byte) (Module, error) {
	cm, err := w.rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, err
	}
	return &wazeroModule{w: w, cm: cm}, nil
}

// Close closes the runtime and everything in it.
func (w *Wazero) Close(ctx context.Context) error { return w.rt.Close(ctx) }

type wazeroModule struct {
	w  *Wazero
	cm wazero.CompiledModule
}

func (m *wazeroModule) NewInstance(ctx context.Context) (Instance, error) {
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous, so a pool may hold many
		WithStartFunctions("_initialize").
		WithStderr(m.w.cfg.Stderr).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader) // the default source is deterministic
	for _, kv := range m.w.cfg.GuestEnv {
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				cfg = cfg.WithEnv(kv[:i], kv[i+1:])
				break
			}
		}
	}
	mod, err := m.w.rt.InstantiateModule(ctx, m.cm, cfg)
	if err != nil {
		return nil, err
	}
	alloc := mod.ExportedFunction(abi.ExportAlloc)
	if alloc == nil {
		mod.Close(ctx)
		return nil, errors.New("guest does not export " + abi.ExportAlloc)
	}
	// A second handle for host calls: an api.Function is not reentrant,
	// and host calls happen while the first one may be running.
	allocs.Store(mod, mod.ExportedFunction(abi.ExportAlloc))
	return &wazeroInstance{mod: mod, alloc: alloc, exports: map[string]api.Function{}}, nil
}

func (m *wazeroModule) Close(ctx context.Context) error { return m.cm.Close(ctx) }

type wazeroInstance struct {
	mod     api.Module
	alloc   api.Function
	exports map[string]api.Function
}

func (i *wazeroInstance) Call(ctx context.Context, export string, in []byte) ([]byte, error) {
	f := i.exports[export]
	if f == nil {
		if f = i.mod.ExportedFunction(export); f == nil {
			return nil, &TrapError{Err: fmt.Errorf("guest does not export %q", export)}
		}
		i.exports[export] = f
	}
	res, err := i.alloc.Call(ctx, uint64(len(in)))
	if err != nil {
		return nil, err
	}
	ptr := uint32(res[0])
	if !i.mod.Memory().Write(ptr, in) {
		return nil, &TrapError{Err: errors.New("input does not fit the guest's buffer")}
	}
	res, err = f.Call(ctx, uint64(ptr), uint64(len(in)))
	if err != nil {
		return nil, err
	}
	optr, n := abi.UnpackPtr(res[0])
	out, ok := i.mod.Memory().Read(optr, n)
	if !ok {
		return nil, &TrapError{Err: errors.New("output outside the guest's memory")}
	}
	return append([]byte(nil), out...), nil
}

func (i *wazeroInstance) Close(ctx context.Context) error {
	allocs.Delete(i.mod)
	return i.mod.Close(ctx)
}
