//go:build wasip1

// Command crash is a guest that fails on demand, to test that the host
// survives its guests: the route entry point panics on the frame "panic",
// allocates until memory runs out on "oom", and otherwise answers the frame
// it was given.
package main

import (
	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/internal/sandbox/guest"
)

var hoard [][]byte

func route(in []byte) []byte {
	var m abi.Message
	if err := m.Decode(abi.NewReader(in)); err != nil {
		panic(err)
	}
	switch string(m.Frame) {
	case "panic":
		panic("crash guest: asked to panic")
	case "oom":
		for {
			hoard = append(hoard, make([]byte, 1<<20))
		}
	}
	return append([]byte("echo:"), m.Frame...)
}

//go:wasmexport wsbind_route
func wsbindRoute(ptr, n uint32) uint64 { return guest.Serve(route, ptr, n) }

func main() {}
