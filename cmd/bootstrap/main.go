// Command bootstrap is the Lambda custom runtime (provided.al2023) of the
// three functions. _HANDLER names the function (connect, route or
// streamfanout); its guest, <name>.wasm, and compiled code, <name>.cache/
// for wazero and <name>.cwasm for wasmtime, sit beside the binary
// (lambdainit.FromEnv says the rest). Built with -tags wsbind_wasmtime
// (cgo) it runs guests in wasmtime; without, in wazero.
//
//	bootstrap -compile-cache DIR FILE.wasm...
//
// compiles each guest into DIR/<name>.cache (and, with wasmtime,
// DIR/<name>.cwasm) and exits: `make build` runs it on the target
// architecture to make the compiled code it ships.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wsbind/wsbind/internal/aws/lambdainit"
)

func main() {
	cacheDir := flag.String("compile-cache", "", "compile each `DIR` FILE.wasm... into DIR/<name>.cache, then exit")
	flag.Parse()
	ctx := context.Background()
	if *cacheDir != "" {
		exitIf(lambdainit.CompileCaches(ctx, *cacheDir, flag.Args(), nil))
		return
	}
	// JSON lines, the host's and aws-lambda-go's (through the log
	// package) alike.
	log := lambdainit.NewLogger(os.Stdout)
	slog.SetDefault(log)
	h, err := lambdainit.FromEnv(ctx, lambdainit.Process{Program: program, Log: log})
	exitIf(err)
	lambda.Start(h)
}

func exitIf(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bootstrap:", err)
		os.Exit(1)
	}
}
