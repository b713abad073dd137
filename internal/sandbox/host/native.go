package host

import (
	"context"
	"fmt"

	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/internal/sandbox/guest"
)

// Program builds a guest's entry points, keyed by export name, over a
// Caller. A wasm main builds the same map over guest.Imports.
type Program func(c guest.Caller) map[string]guest.Entry

// NativeModule is the native engine: the guest's Go code linked into the
// host and called directly, with host calls made as plain function calls.
// It gives every WASI figure its baseline and runs the same tests without
// wasm.
func NativeModule(p Program) Module { return nativeModule{p} }

type nativeModule struct{ p Program }

func (m nativeModule) NewInstance(context.Context) (Instance, error) {
	inst := &nativeInstance{}
	inst.entries = m.p(nativeCaller{inst})
	return inst, nil
}

func (nativeModule) Close(context.Context) error { return nil }

type nativeInstance struct {
	entries map[string]guest.Entry
	ctx     context.Context // the call in progress
}

func (i *nativeInstance) Call(ctx context.Context, export string, in []byte) (out []byte, err error) {
	e, ok := i.entries[export]
	if !ok {
		return nil, &TrapError{Err: fmt.Errorf("no export %q", export)}
	}
	i.ctx = ctx
	defer func() {
		i.ctx = nil
		if p := recover(); p != nil {
			err = &TrapError{Err: fmt.Errorf("panic: %v", p)}
		}
	}()
	return e(in), nil
}

func (i *nativeInstance) Close(context.Context) error { return nil }

// nativeCaller is guest.Caller for the native engine.
type nativeCaller struct{ i *nativeInstance }

func (c nativeCaller) Call(fn abi.Func, req []byte) (abi.Status, []byte) {
	return servicesOf(c.i.ctx).Dispatch(c.i.ctx, fn, req)
}

func (c nativeCaller) Now() int64 { return servicesOf(c.i.ctx).now() }
