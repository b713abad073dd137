//go:build wasip1

// Command connect is the connect function's guest: the connection policy
// for $connect and $disconnect. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o connect.wasm ./functions/connect
package main

import "github.com/wsbind/wsbind/function"

var connect = function.Connect()

//go:wasmexport wsbind_connect
func wsbindConnect(ptr, n uint32) uint64 { return connect.Serve(ptr, n) }

func main() {}
