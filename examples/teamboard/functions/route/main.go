//go:build wasip1

// Command route is the route function's guest: it runs each message
// through the application's bindings.
package main

import (
	"example.com/teamboard/bindings"
	"github.com/wsbind/wsbind/function"
)

var route = function.Route(bindings.Registry)

//go:wasmexport wsbind_route
func wsbindRoute(ptr, n uint32) uint64 { return route.Serve(ptr, n) }

func main() {}
