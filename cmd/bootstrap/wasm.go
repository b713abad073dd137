//go:build !wsbind_native

package main

import "github.com/wsbind/wsbind/internal/sandbox/host"

// program is nil: the guest is <name>.cwasm in wasmtime (-tags
// wsbind_wasmtime) or <name>.wasm in wazero.
var program host.Program
