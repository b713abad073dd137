//go:build !wsbind_wasmtime

package lambdainit

import (
	"errors"

	"github.com/wsbind/wsbind/internal/sandbox/host"
)

// aotBuilt reports whether this bootstrap has the wasmtime engine.
const aotBuilt = false

// errNoAOT is loadAOT's error in a bootstrap built without wasmtime.
var errNoAOT = errors.New("this bootstrap was built without wasmtime (build tag wsbind_wasmtime)")

func loadAOT(*Process, string, *closers) (host.Module, error) { return nil, errNoAOT }

// precompile makes no ahead-of-time code without wasmtime.
func precompile(string, string) (bool, error) { return false, nil }
