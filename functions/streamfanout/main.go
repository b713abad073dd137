//go:build wasip1

// Command streamfanout is the fan-out function's guest: it turns one
// stream record into a push and posts it to the subscribers. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o streamfanout.wasm ./functions/streamfanout
package main

import (
	"os"

	"github.com/wsbind/wsbind/bindings"
	"github.com/wsbind/wsbind/internal/guest"
)

var fanout = guest.Fanout(guest.Imports{}, bindings.Registry(guest.Settings(os.Getenv)))

//go:wasmexport wsbind_fanout
func wsbindFanout(ptr, n uint32) uint64 { return guest.Serve(fanout, ptr, n) }

func main() {}
