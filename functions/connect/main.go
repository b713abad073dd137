//go:build wasip1

// Command connect is the connect function's guest: the connection policy
// for $connect and $disconnect. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o connect.wasm ./functions/connect
package main

import "github.com/wsbind/wsbind/internal/guest"

var connect = guest.Connect(guest.Imports{})

//go:wasmexport wsbind_connect
func wsbindConnect(ptr, n uint32) uint64 { return guest.Serve(connect, ptr, n) }

func main() {}
