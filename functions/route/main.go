//go:build wasip1

// Command route is the route function's guest: it demultiplexes a frame on
// its stream and runs the application's binding. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o route.wasm ./functions/route
package main

import (
	"github.com/wsbind/wsbind/bindings"
	"github.com/wsbind/wsbind/function"
)

var route = function.Route(bindings.Registry)

//go:wasmexport wsbind_route
func wsbindRoute(ptr, n uint32) uint64 { return route.Serve(ptr, n) }

func main() {}
