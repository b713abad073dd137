//go:build wasip1

// Command streamfanout is the fan-out function's guest: it turns the
// items table's changes into pushes to the connections subscribed.
package main

import (
	"example.com/teamboard/bindings"
	"github.com/wsbind/wsbind/function"
)

var fanout = function.Fanout(bindings.Registry)

//go:wasmexport wsbind_fanout
func wsbindFanout(ptr, n uint32) uint64 { return fanout.Serve(ptr, n) }

func main() {}
