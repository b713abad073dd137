//go:build !wasip1

// Command crash is a wasm test guest; it does nothing natively.
package main

func main() {}
