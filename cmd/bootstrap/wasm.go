//go:build !wsbind_native

package main

import "github.com/wsbind/wsbind/internal/host"

// program is nil: the guest is <name>.wasm, run by wazero.
var program host.Program
