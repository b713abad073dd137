// Package cli is the wsbind command: it scaffolds an application
// (init), runs it in the local emulator (run), makes its Lambda package
// (build), tokens for the emulator (token) and its API's AsyncAPI
// document (describe). cmd/wsbind is its main.
//
// Every failure is one line on standard error, "wsbind <command>: ...",
// and a status: 2 for a bad command line or setting, 1 for anything
// else.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// Env is what a command sees of the process.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Dir is the working directory; "" means the process's.
	Dir string
}

// command is one subcommand.
type command struct {
	name, args, short string
	run               func(ctx context.Context, env Env, args []string) error
}

var commands []command

func init() {
	commands = []command{
		{"init", "[-module PATH] [-replace DIR] DIR", "make a new application module in DIR", initCmd},
		{"run", "[-addr ADDR] [-faults SPEC] [-idle D] [-lifetime D]", "build this module's guests and serve them in the local emulator", runCmd},
		{"build", "[-arch ARCH] [-engine ENGINE] [-o DIR]", "make the Lambda package of this module", buildCmd},
		{"token", "[-roles a,b] USER", "print a token for USER that the local emulator accepts", tokenCmd},
		{"describe", "[-o FILE] [-guests DIR] [-bindings]", "write the AsyncAPI document of this module's WebSocket API", describeCmd},
		{"fansim", "[-n 1000,10k] [-quota Q] [-workers P] [-memory MB] [-fail F] [-dilate D]", "simulate a fan-out to N subscribers against a management endpoint with a quota", fansimCmd},
	}
}

// usageError is a bad command line: status 2.
type usageError struct{ error }

// Main runs the command line args (without the program name) and returns
// the process's exit status.
func Main(ctx context.Context, env Env, args []string) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		usage(env.Stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		}
		fmt.Fprintf(env.Stderr, "wsbind %s: %v\n", c.name, err)
		var u usageError
		if errors.As(err, &u) {
			return 2
		}
		return 1
	}
	fmt.Fprintf(env.Stderr, "wsbind: unknown command %q (commands: init, run, build, token, describe, fansim; wsbind help)\n", args[0])
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "wsbind: a RESTful streaming API over WebSockets, on API Gateway and Lambda")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "usage:")
	for _, c := range commands {
		fmt.Fprintf(w, "  wsbind %s %s\n        %s\n", c.name, c.args, c.short)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "wsbind <command> -h lists a command's flags.")
}

// flags returns a flag set for a command that reports errors as usage
// errors, without printing them twice.
func flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("wsbind "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses args, flags and positional arguments in any order, and
// returns the positional ones. A flag error is a usage error; -h prints
// the command's flags on env.Stderr.
func parse(env Env, fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(env.Stderr)
			fmt.Fprintf(env.Stderr, "usage of %s:\n", fs.Name())
			fs.PrintDefaults()
			return nil, err
		}
		if err != nil {
			return nil, usageError{err}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
}

// usagef is a usage error.
func usagef(format string, a ...any) error {
	return usageError{fmt.Errorf(format, a...)}
}
