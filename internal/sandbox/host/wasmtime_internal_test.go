//go:build wsbind_wasmtime

package host

import (
	"context"
	"testing"

	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/internal/testkit/wasmbuild"
)

// TestWasmtime_EpochIdle: the epoch's timer runs only while guest code
// does. After instantiation and after a call it is stopped, so that an
// idle bootstrap is not woken every tick.
func TestWasmtime_EpochIdle(t *testing.T) {
	wasm, err := wasmbuild.Build("github.com/wsbind/wsbind/internal/sandbox/host/testguest/crash")
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWasmtime(WasmtimeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	mod, err := w.Compile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close(context.Background())
	armed := func() bool {
		w.tickMu.Lock()
		defer w.tickMu.Unlock()
		if w.tick.Stop() { // true: it was armed; re-arm it as it was
			w.tick.Reset(wasmtimeTick)
			return true
		}
		return w.active != 0
	}
	if armed() {
		t.Fatal("the epoch timer runs before any guest code")
	}
	inst, err := mod.NewInstance(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(context.Background())
	if armed() {
		t.Error("the epoch timer runs after instantiation")
	}
	if _, err := inst.Call(context.Background(), abi.ExportRoute, []byte("x")); err != nil {
		t.Logf("call: %v", err) // any answer will do: only the timer is checked
	}
	if armed() {
		t.Error("the epoch timer runs after a call")
	}
}
