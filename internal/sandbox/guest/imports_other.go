//go:build !wasip1

package guest

import "github.com/wsbind/wsbind/internal/sandbox/abi"

// Imports is the Caller of a wasm guest. Outside wasm there are no host
// imports: the native engine passes its own Caller instead.
type Imports struct{}

// Call implements Caller; outside wasm it only panics.
func (Imports) Call(abi.Func, []byte) (abi.Status, []byte) { panic("guest.Imports is wasm only") }

// Now implements Caller; outside wasm it only panics.
func (Imports) Now() int64 { panic("guest.Imports is wasm only") }
