//go:build wasip1

// Command golden is the golden suite's guest: the route and fan-out entry
// points of the real guests, over the application's bindings plus the
// test bindings, with the suite's deterministic ids.
package main

import (
	"github.com/wsbind/wsbind/internal/sandbox/guest"
	"github.com/wsbind/wsbind/internal/testkit/protocoltest/testbindings"
)

var reg = testbindings.Registry()

var (
	route  = guest.Route(guest.Imports{}, reg)
	fanout = guest.Fanout(guest.Imports{}, reg)
)

//go:wasmexport wsbind_route
func wsbindRoute(ptr, n uint32) uint64 { return guest.Serve(route, ptr, n) }

//go:wasmexport wsbind_fanout
func wsbindFanout(ptr, n uint32) uint64 { return guest.Serve(fanout, ptr, n) }

func main() {}
