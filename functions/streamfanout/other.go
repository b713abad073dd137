//go:build !wasip1

// Command streamfanout is a WebAssembly guest; outside wasm it only says how to
// build it.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "streamfanout is a wasm guest: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o streamfanout.wasm ./functions/streamfanout")
	os.Exit(2)
}
