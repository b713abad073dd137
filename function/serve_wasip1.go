//go:build wasip1

package function

import "github.com/wsbind/wsbind/internal/sandbox/guest"

// Serve runs the function on the input the host wrote into the guest's
// memory at ptr (n bytes) and returns where its output is, packed as the
// host expects. Call it only from the main's //go:wasmexport function.
func (g Guest) Serve(ptr, n uint32) uint64 { return guest.Serve(g.entry, ptr, n) }

// wsbindDescribe is every guest's wsbind_describe export: the bindings
// of the route guest as JSON (none in the other guests), so that tools
// such as the emulator's debugger page learn them from the guest instead
// of linking the application.
//
//go:wasmexport wsbind_describe
func wsbindDescribe(ptr, n uint32) uint64 {
	return guest.Serve(guest.DescribeEntry(described), ptr, n)
}
