//go:build wasip1

package function

import "github.com/wsbind/wsbind/internal/guest"

// Serve runs the function on the input the host wrote into the guest's
// memory at ptr (n bytes) and returns where its output is, packed as the
// host expects. Call it only from the main's //go:wasmexport function.
func (g Guest) Serve(ptr, n uint32) uint64 { return guest.Serve(g.entry, ptr, n) }
