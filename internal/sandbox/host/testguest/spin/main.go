//go:build wasip1

// Command spin is a guest that runs away on demand, to test that the host
// stops a call that takes too long: the route entry point loops forever on
// the frame "spin", answers "env:NAME" with the environment variable NAME
// (to test what WASI gives guests), and otherwise answers the frame it was
// given.
package main

import (
	"os"
	"strings"

	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/internal/sandbox/guest"
)

// spins counts the loop's turns; a global, so the loop has work to do.
var spins uint64

func route(in []byte) []byte {
	var m abi.Message
	if err := m.Decode(abi.NewReader(in)); err != nil {
		panic(err)
	}
	if string(m.Frame) == "spin" {
		for {
			spins++
		}
	}
	if name, ok := strings.CutPrefix(string(m.Frame), "env:"); ok {
		v, set := os.LookupEnv(name)
		if !set {
			return []byte("unset")
		}
		return []byte("env:" + v)
	}
	return append([]byte("echo:"), m.Frame...)
}

//go:wasmexport wsbind_route
func wsbindRoute(ptr, n uint32) uint64 { return guest.Serve(route, ptr, n) }

func main() {}
