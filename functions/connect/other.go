//go:build !wasip1

// Command connect is a WebAssembly guest; outside wasm it only says how to
// build it.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "connect is a wasm guest: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o connect.wasm ./functions/connect")
	os.Exit(2)
}
