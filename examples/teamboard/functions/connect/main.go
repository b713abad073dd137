//go:build wasip1

// Command connect is the connect function's guest: it records
// connections as they come ($connect) and go ($disconnect).
package main

import "github.com/wsbind/wsbind/function"

var connect = function.Connect()

//go:wasmexport wsbind_connect
func wsbindConnect(ptr, n uint32) uint64 { return connect.Serve(ptr, n) }

func main() {}
