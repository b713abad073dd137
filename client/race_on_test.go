//go:build race

package client_test

// raceOn: the race detector slows every goroutine several times over.
const raceOn = true
