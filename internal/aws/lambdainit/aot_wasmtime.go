//go:build wsbind_wasmtime

package lambdainit

import (
	"context"
	"os"

	"github.com/wsbind/wsbind/internal/sandbox/host"
)

// aotBuilt reports whether this bootstrap has the wasmtime engine.
const aotBuilt = true

// loadAOT maps a .cwasm into a new wasmtime engine. wasmtime refuses
// code made for another CPU, or by another wasmtime, with an error.
func loadAOT(env *Process, path string, cl *closers) (host.Module, error) {
	eng, err := host.NewWasmtime(host.WasmtimeConfig{GuestEnv: env.guestEnv()})
	if err != nil {
		return nil, err
	}
	mod, err := eng.Load(path)
	if err != nil {
		eng.Close()
		return nil, err
	}
	*cl = append(*cl, func(context.Context) error { return eng.Close() })
	return mod, nil
}

// precompile compiles the guest wasm ahead of time into out, for every
// machine of this architecture (host.WasmtimeConfig.Portable).
func precompile(wasmFile, out string) (bool, error) {
	wasm, err := os.ReadFile(wasmFile)
	if err != nil {
		return false, err
	}
	eng, err := host.NewWasmtime(host.WasmtimeConfig{Portable: true})
	if err != nil {
		return false, err
	}
	defer eng.Close()
	b, err := eng.Precompile(wasm)
	if err != nil {
		return false, err
	}
	return true, os.WriteFile(out, b, 0o644)
}
