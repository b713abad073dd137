package cli

import (
	"context"
	"os"
	"os/exec"
	"time"

	"github.com/wsbind/wsbind/internal/tool/fansim"
)

// fansimCmd runs the fan-out simulator (internal/tool/fansim) and prints
// its table. With -serve it is the simulator's endpoint process instead.
func fansimCmd(ctx context.Context, env Env, args []string) error {
	if len(args) > 0 && args[0] == "-serve" {
		return fansim.ServeMain(args[1:], os.Stdin, env.Stdout)
	}
	fs := flags("fansim")
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
	pos, err := parse(env, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected arguments %q", pos)
	}
	ns, err := fansim.ParseSizes(*sizes)
	if err != nil {
		return usageError{err}
	}
	switch {
	case *dilate < 1:
		return usagef("-dilate %v: want 1 or more", *dilate)
	case *fail < 0 || *fail >= 1:
		return usagef("-fail %v: want a share in [0, 1)", *fail)
	case *memory < 128 || *memory > 10240:
		return usagef("-memory %d: Lambda allows 128 to 10240 MB", *memory)
	case *workers < 1 || *parents < 1:
		return usagef("-workers %d -parents %d: want at least 1 each", *workers, *parents)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cfg := fansim.Config{
		Sizes: ns, Quota: *quota, Workers: *workers, Parents: *parents, Threshold: *threshold, MemoryMB: *memory,
		Endpoint: fansim.ServerOptions{Median: *median, P99: *p99, Fail: *fail, Seed: *seed},
		Dilate:   *dilate,
		Spawn: func(a []string) *exec.Cmd {
			return exec.Command(self, append([]string{"fansim", "-serve"}, a...)...)
		},
	}
	rs, err := fansim.Run(ctx, cfg)
	fansim.Table(env.Stdout, cfg, rs)
	return err
}
