//go:build wsbind_native

package main

import (
	"os"

	"github.com/wsbind/wsbind/bindings"
	"github.com/wsbind/wsbind/internal/sandbox/guest"
	"github.com/wsbind/wsbind/internal/sandbox/host"
)

// program links the guest code into the binary: the native baseline of
// every WASI figure, cold start included. No .wasm is read.
var program host.Program = func(c guest.Caller) map[string]guest.Entry {
	return guest.All(c, bindings.Registry(guest.Settings(os.Getenv)))
}
