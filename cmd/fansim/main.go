// Command fansim simulates a fan-out to N subscribers: the real
// streamfanout handler, chunker and push workers (internal/tool/fansim)
// against a management endpoint, in a process of its own, with a latency
// distribution, a quota and a failure rate. It prints delivery time
// against the limit N/quota, posts per second, CPU and estimated cost.
//
//	go run ./cmd/fansim -n 1k,10k,100k -quota 10000 -memory 1024 -dilate 5
//
// It is a tool of this repository, not of applications: it links the
// framework's own example bindings, so it lives beside wsbind, not in it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/wsbind/wsbind/internal/tool/fansim"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-serve" {
		exitIf(fansim.ServeMain(os.Args[2:], os.Stdin, os.Stdout))
		return
	}
	fs := flag.NewFlagSet("fansim", flag.ExitOnError)
	sizes := fs.String("n", "1000,10000,100000", "subscriber `counts`, comma-separated (10k, 1M allowed)")
	quota := fs.Float64("quota", 10000, "requests per second the fan-out may make (API Gateway's account throttle)")
	workers := fs.Int("workers", 10, "push workers: the push function's reserved concurrency")
	parents := fs.Int("parents", 1, "fan-out invocations at once: the streamfanout function's reserved concurrency")
	threshold := fs.Int("threshold", 0, "chunk a push to more connections than this (0: the default)")
	memory := fs.Int("memory", 512, "Lambda memory size in MB, for the cost")
	median := fs.Duration("latency", 20*time.Millisecond, "the endpoint's median latency")
	p99 := fs.Duration("p99", 80*time.Millisecond, "the endpoint's 99th percentile latency")
	fail := fs.Float64("fail", 0.01, "share of posts the endpoint fails with 500")
	dilate := fs.Float64("dilate", 1, "slow the clock by this `factor` (quota divided, latencies multiplied) when the machine cannot post at the quota")
	seed := fs.Uint64("seed", 1, "seed of the endpoint's draws")
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() != 0 {
		usage(fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	ns, err := fansim.ParseSizes(*sizes)
	if err != nil {
		usage(err)
	}
	switch {
	case *dilate < 1:
		usage(fmt.Errorf("-dilate %v: want 1 or more", *dilate))
	case *fail < 0 || *fail >= 1:
		usage(fmt.Errorf("-fail %v: want a share in [0, 1)", *fail))
	case *memory < 128 || *memory > 10240:
		usage(fmt.Errorf("-memory %d: Lambda allows 128 to 10240 MB", *memory))
	case *workers < 1 || *parents < 1:
		usage(fmt.Errorf("-workers %d -parents %d: want at least 1 each", *workers, *parents))
	}
	self, err := os.Executable()
	exitIf(err)
	cfg := fansim.Config{
		Sizes: ns, Quota: *quota, Workers: *workers, Parents: *parents, Threshold: *threshold, MemoryMB: *memory,
		Endpoint: fansim.ServerOptions{Median: *median, P99: *p99, Fail: *fail, Seed: *seed},
		Dilate:   *dilate,
		Spawn: func(a []string) *exec.Cmd {
			return exec.Command(self, append([]string{"-serve"}, a...)...)
		},
	}
	rs, err := fansim.Run(context.Background(), cfg)
	fansim.Table(os.Stdout, cfg, rs)
	exitIf(err)
}

func usage(err error) {
	fmt.Fprintln(os.Stderr, "fansim:", err)
	os.Exit(2)
}

func exitIf(err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "fansim:", err)
		os.Exit(1)
	}
}
