//go:build wasip1

// Command streamfanout is the fan-out function's guest: it turns one
// stream record into a push and posts it to the subscribers. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o streamfanout.wasm ./functions/streamfanout
package main

import (
	"github.com/wsbind/wsbind/bindings"
	"github.com/wsbind/wsbind/function"
)

var fanout = function.Fanout(bindings.Registry)

//go:wasmexport wsbind_fanout
func wsbindFanout(ptr, n uint32) uint64 { return fanout.Serve(ptr, n) }

func main() {}
