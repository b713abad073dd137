// Command wsbind makes, runs and builds wsbind applications:
//
//	wsbind init DIR      a new application module in DIR
//	wsbind run           this module's guests in the local emulator
//	wsbind build         this module's Lambda package
//	wsbind token USER    a token the local emulator accepts
//
// Install it with go install github.com/wsbind/wsbind/cmd/wsbind@latest;
// inside an application, go tool wsbind runs the version its go.mod
// requires. wsbind help lists the flags.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/wsbind/wsbind/internal/tool/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, cli.Env{Stdout: os.Stdout, Stderr: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}
