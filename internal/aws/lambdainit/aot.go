package lambdainit

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/wsbind/wsbind/internal/sandbox/host"
)

// Engines: WSBIND_ENGINE's values.
const (
	// EngineWasmtime runs <function>.cwasm, the guest compiled ahead of
	// time for the target architecture, in wasmtime; a bootstrap built
	// without wasmtime (no wsbind_wasmtime tag), a missing file or one
	// made for another CPU falls back to wazero with one log line.
	EngineWasmtime = "wasmtime"
	// EngineWazero runs <function>.wasm in wazero, with the compiled code
	// shipped in <function>.cache/ (or compiling at start without it).
	EngineWazero = "wazero"
)

// engineOf returns the engine WSBIND_ENGINE names: "" is wasmtime when
// the bootstrap has it, else wazero.
func engineOf(env *Process) (string, error) {
	switch e := env.getenv("WSBIND_ENGINE"); e {
	case EngineWasmtime, EngineWazero:
		return e, nil
	case "":
		if aotBuilt {
			return EngineWasmtime, nil
		}
		return EngineWazero, nil
	default:
		return "", fmt.Errorf("WSBIND_ENGINE=%q: want %s or %s", e, EngineWasmtime, EngineWazero)
	}
}

// taskRoot is $LAMBDA_TASK_ROOT, or the executable's directory.
func taskRoot(env *Process) (string, error) {
	if root := env.getenv("LAMBDA_TASK_ROOT"); root != "" {
		return root, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("task root: %w", err)
	}
	return filepath.Dir(exe), nil
}

// loadGuest loads the function's guest with the engine WSBIND_ENGINE
// selects, falling back from wasmtime to wazero: a start may be slower
// than it should, never fail for want of ahead-of-time code. It returns
// the engine that runs the guest.
func loadGuest(ctx context.Context, env *Process, name string, log *slog.Logger, cl *closers) (host.Module, string, error) {
	engine, err := engineOf(env)
	if err != nil {
		return nil, "", err
	}
	root, err := taskRoot(env)
	if err != nil {
		return nil, "", err
	}
	if engine == EngineWasmtime {
		mod, err := loadAOT(env, filepath.Join(root, name+".cwasm"), cl)
		if err == nil {
			return mod, EngineWasmtime, nil
		}
		log.LogAttrs(ctx, slog.LevelWarn, "wsbind: no ahead-of-time code, running "+name+".wasm in wazero",
			slog.String("function", name), slog.Any("err", err))
	}
	mod, err := loadWasm(ctx, env, root, name, log, cl)
	return mod, EngineWazero, err
}
