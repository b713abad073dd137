//go:build !wasip1

// Command golden is a wasm test guest; it does nothing natively.
package main

func main() {}
