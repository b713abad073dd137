//go:build !wasip1

// Command route is a WebAssembly guest; outside wasm it only says how to
// build it.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "route is a wasm guest: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o route.wasm ./functions/route")
	os.Exit(2)
}
