// Package function is the entry of an application's WebAssembly guests:
// the route, streamfanout and connect functions, each a small main
// package compiled with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared.
// The host (the Lambda bootstrap, the local emulator) runs any
// application's guests; an application provides only its registry.
//
// An application's functions/route/main.go:
//
//	//go:build wasip1
//
//	package main
//
//	import (
//		"example.com/app/bindings"
//		"github.com/wsbind/wsbind/function"
//	)
//
//	var route = function.Route(bindings.Registry)
//
//	//go:wasmexport wsbind_route
//	func wsbindRoute(ptr, n uint32) uint64 { return route.Serve(ptr, n) }
//
//	func main() {}
//
// streamfanout is the same with function.Fanout and the export
// wsbind_fanout; connect uses function.Connect() and wsbind_connect.
// The export names are the host's contract and must be exactly these.
package function

import (
	"os"

	"github.com/wsbind/wsbind/internal/sandbox/guest"
	"github.com/wsbind/wsbind/resource"
)

// Registry builds an application's bindings under the deployment's
// settings (resource.Settings, read from the function's environment:
// WSBIND_PAGE_SIZE).
type Registry func(resource.Settings) *resource.Registry

// Guest is one function's entry point. Its Serve method (wasip1 only)
// is what the main's //go:wasmexport function returns.
type Guest struct{ entry guest.Entry }

// Route is the route function: every message of every connection, run
// through the application's bindings.
func Route(reg Registry) Guest {
	described = reg(guest.Settings(os.Getenv))
	return Guest{guest.Route(guest.Imports{}, described)}
}

// described is the registry the route guest serves, which it describes
// to tools (the wsbind_describe export: the debugger page's bindings).
var described *resource.Registry

// Fanout is the streamfanout function: every change of the items table,
// pushed to the connections subscribed to it.
func Fanout(reg Registry) Guest {
	return Guest{guest.Fanout(guest.Imports{}, reg(guest.Settings(os.Getenv)))}
}

// Connect is the connect function: $connect and $disconnect. It needs no
// bindings.
func Connect() Guest {
	return Guest{guest.Connect(guest.Imports{})}
}
