package lambdainit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsbind/wsbind/internal/testkit/runtimeapi"
	"github.com/wsbind/wsbind/internal/testkit/wasmbuild"
)

// BenchmarkBootstrapCost measures, from outside the process, what the
// whole bootstrap costs per message and at a cold start, beside the floor
// of any Go custom runtime measured in the same run: the echo function of
// internal/testkit/echofloor (aws-lambda-go answering each event with
// itself). Each iteration is one round: every variant in turn (echo,
// native, wasmtime, wazero, ...), each a new process against the Runtime
// API stand-in, so that a drift of the machine's speed reaches every
// variant of a round alike. For each process:
//
//   - cold start: exec → the reply to its first event, a `$default`
//     create of a question (AWS's sample MESSAGE event, route function,
//     WSBIND_BACKEND=memory); and the process's CPU by then;
//   - then WSBIND_BENCH_MESSAGES more creates (default 200), one at a
//     time: the process's CPU per message (the sum over its threads of
//     /proc/<pid>/task/<tid>/schedstat, in ns, read before and after)
//     and the stand-in's wall time per message;
//   - then 300 ms of waiting for an event: the CPU it burns idle, per
//     second.
//
// The variants: echo (the floor); native (the bootstrap built with
// -tags wsbind_native: guest code linked in); wasmtime (the bootstrap
// built with wasmtime, mapping route.cwasm; left out without gcc);
// wazero (the pure-Go bootstrap with route.wasm and its shipped
// compiled code). WSBIND_BENCH_BASE=DIR (a checkout of another commit)
// adds base-native, base-wasmtime and base-wazero built from DIR: a
// change measured against its base in the same run.
// WSBIND_BENCH_VARIANTS=echo,wasmtime,... runs only those.
//
// Three sub-benchmarks: cpu=full; cpu=quota-<MB>MB, under a cgroup (v1)
// CPU quota of the share of a vCPU Lambda gives WSBIND_BENCH_MEMORY MB
// (default 128, Lambda's smallest size and least CPU; a full vCPU at 1,769 MB), with
// Lambda's init boost modelled: the process starts at full CPU and is
// moved into the quota when it first polls for an event, so its first
// event, like every later one, runs under the quota; and
// cpu=quota-<MB>MB-from-exec, the cold start alone with no boost, under
// the quota from exec on. The quotas are skipped, saying why, where the
// cgroup cannot be made.
//
// Reported as medians over the rounds, per variant: cold-ms, init-cpu-ms
// (CPU by the first reply), cpu-us/msg, wall-us/msg, idle-cpu-ms/s, and
// the ratios to the floor of the same round (cold-x-floor,
// cpu-x-floor); the table is also logged. Run with -benchtime Nx: N
// rounds.
func BenchmarkBootstrapCost(b *testing.B) {
	variants := costVariants(b)
	msgs := envInt(b, "WSBIND_BENCH_MESSAGES", 200)
	memMB := envInt(b, "WSBIND_BENCH_MEMORY", 128)
	events := createEvents(b, msgs+1)
	b.Run("cpu=full", func(b *testing.B) { runCostRounds(b, variants, events, costMode{}) })
	for _, m := range []costMode{{quotaMB: memMB}, {quotaMB: memMB, fromExec: true}} {
		b.Run(m.String(), func(b *testing.B) {
			q, err := newCPUQuota(memMB)
			if err != nil {
				b.Skipf("no CPU quota: %v", err)
			}
			q.close()
			when, evs := "at its first poll for an event", events
			if m.fromExec {
				when, evs = "from exec (cold start only)", events[:1]
			}
			b.Logf("a cgroup per process: cpu.cfs_quota_us=%d of cpu.cfs_period_us=%d (%.1f%% of a CPU, %d MB of 1,769), entered %s",
				q.quotaUS, cfsPeriodUS, 100*float64(q.quotaUS)/cfsPeriodUS, memMB, when)
			runCostRounds(b, variants, evs, m)
		})
	}
}

// costMode is how much CPU the processes get: all of it (the zero
// value), or the quota of a function of quotaMB, from the first poll for
// an event (Lambda's init at full CPU) or, with fromExec, from the start.
type costMode struct {
	quotaMB  int
	fromExec bool
}

func (m costMode) String() string {
	switch {
	case m.quotaMB == 0:
		return "cpu=full"
	case m.fromExec:
		return fmt.Sprintf("cpu=quota-%dMB-from-exec", m.quotaMB)
	}
	return fmt.Sprintf("cpu=quota-%dMB", m.quotaMB)
}

// runCostRounds runs one round of every variant per iteration and
// reports the medians. With one event, only the cold start is measured.
func runCostRounds(b *testing.B, variants []costVariant, events [][]byte, mode costMode) {
	samples := make([][]costSample, len(variants))
	for b.Loop() {
		for i, v := range variants {
			samples[i] = append(samples[i], runCost(b, v, events, mode))
		}
	}
	floor := samples[0] // variants[0] is echo
	var table strings.Builder
	fmt.Fprintf(&table, "%d messages after the first, medians of %d rounds:\n", len(events)-1, len(floor))
	fmt.Fprintf(&table, "%-14s %10s %8s %12s %11s %8s %8s %12s\n", "variant", "cold ms", "x floor", "init CPU ms", "CPU µs/msg", "x floor", "wall µs", "idle CPU ms/s")
	for i, v := range variants {
		s := samples[i]
		cold := medianOf(s, func(c costSample) float64 { return ms(c.cold) })
		initCPU := medianOf(s, func(c costSample) float64 { return ms(c.coldCPU) })
		cpu := medianOf(s, func(c costSample) float64 { return us(c.cpuPerMsg) })
		wall := medianOf(s, func(c costSample) float64 { return us(c.wallPerMsg) })
		idle := medianOf(s, func(c costSample) float64 { return ms(c.idleRate) })
		var coldX, cpuX []float64
		for r := range s {
			coldX = append(coldX, float64(s[r].cold)/float64(floor[r].cold))
			cpuX = append(cpuX, float64(s[r].cpuPerMsg)/float64(floor[r].cpuPerMsg))
		}
		b.ReportMetric(cold, v.name+"-cold-ms")
		b.ReportMetric(initCPU, v.name+"-init-cpu-ms")
		if i > 0 {
			b.ReportMetric(median(coldX), v.name+"-cold-x-floor")
		}
		if len(events) == 1 {
			fmt.Fprintf(&table, "%-14s %10.1f %8.2f %12.1f\n", v.name, cold, median(coldX), initCPU)
			continue
		}
		b.ReportMetric(cpu, v.name+"-cpu-us/msg")
		b.ReportMetric(wall, v.name+"-wall-us/msg")
		b.ReportMetric(idle, v.name+"-idle-cpu-ms/s")
		if i > 0 {
			b.ReportMetric(median(cpuX), v.name+"-cpu-x-floor")
		}
		fmt.Fprintf(&table, "%-14s %10.1f %8.2f %12.1f %11.0f %8.2f %8.0f %12.1f\n", v.name, cold, median(coldX), initCPU, cpu, median(cpuX), wall, idle)
	}
	b.Log(table.String())
}

func medianOf(s []costSample, f func(costSample) float64) float64 {
	xs := make([]float64, len(s))
	for i, c := range s {
		xs[i] = f(c)
	}
	return median(xs)
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// costVariant is one process to measure: a binary, its read-only task
// root, and what its ready line must say.
type costVariant struct {
	name   string
	bin    string
	root   string
	engine string // "" for the echo function, which has no ready line
}

// costSample is what one process measured.
type costSample struct {
	cold, coldCPU         time.Duration // exec → first reply; CPU by then
	cpuPerMsg, wallPerMsg time.Duration
	idleRate              time.Duration // CPU per second of waiting for an event
}

// runCost starts one process, times its first event, then the rest.
// Under a quota the process has a cgroup of its own, as a Lambda
// environment has: one that a previous process had drained of its
// period's quota would stall the start.
func runCost(b *testing.B, v costVariant, events [][]byte, mode costMode) costSample {
	var q *cpuQuota
	if mode.quotaMB > 0 {
		var err error
		if q, err = newCPUQuota(mode.quotaMB); err != nil {
			b.Fatal(err)
		}
		defer q.close() // after the process is killed: defers run last first
	}
	rt, err := runtimeapi.New()
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	var logs logBuffer
	cmd := exec.Command(v.bin)
	if mode.fromExec {
		// The shell enters the cgroup, then becomes the bootstrap: under
		// the quota from its first instruction. (Its own start, about a
		// millisecond at full CPU, is in every variant's cold start.)
		cmd = exec.Command("/bin/sh", "-c", `echo $$ > "$0" && exec "$1"`, filepath.Join(q.dir, "cgroup.procs"), v.bin)
	}
	cmd.Env = []string{"_HANDLER=route", "LAMBDA_TASK_ROOT=" + v.root, "WSBIND_BACKEND=memory",
		"AWS_LAMBDA_RUNTIME_API=" + rt.Addr(), "TMPDIR=" + b.TempDir()}
	cmd.Stdout, cmd.Stderr = &logs, &logs
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fail := func(format string, args ...any) {
		b.Helper()
		b.Fatalf("%s: %s\n%s", v.name, fmt.Sprintf(format, args...), logs.String())
	}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	pid := cmd.Process.Pid
	if q != nil && !mode.fromExec {
		// Lambda's init runs at full CPU; the quota from the first
		// event on.
		select {
		case <-rt.Polled():
		case <-ctx.Done():
			fail("no poll for an event: %v", ctx.Err())
		}
		if err := q.add(pid); err != nil {
			b.Fatal(err)
		}
	}
	invoke := func(ev []byte) {
		resp, err := rt.Invoke(ctx, ev)
		if err != nil || resp.Error {
			fail("invoke: %v %s", err, resp.Body)
		}
		if v.engine == "" {
			if !bytes.Equal(resp.Body, ev) {
				fail("echo: got %.200s, want %.200s", resp.Body, ev)
			}
		} else if !bytes.Contains(resp.Body, []byte(`\"response_status\":201`)) {
			fail("not created: %.300s", resp.Body)
		}
	}
	var s costSample
	invoke(events[0])
	s.cold = time.Since(start)
	// The ready line was written before the first reply, but reaches
	// logs through a pipe and a goroutine of os/exec: it may lag.
	for wait := time.Now(); v.engine != "" && !strings.Contains(logs.String(), "wsbind: ready") && time.Since(wait) < 10*time.Second; {
		time.Sleep(time.Millisecond)
	}
	if v.engine != "" && !strings.Contains(logs.String(), "engine="+v.engine) {
		fail("not started with engine=%s", v.engine)
	}
	if strings.Contains(logs.String(), "compiled route") || strings.Contains(logs.String(), "no ahead-of-time code") {
		fail("started without the compiled code it was given")
	}
	cpu0, err := threadCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	s.coldCPU = cpu0.total()
	if len(events) == 1 {
		return s
	}
	t0 := time.Now()
	for _, ev := range events[1:] {
		invoke(ev)
	}
	wall := time.Since(t0)
	cpu1, err := threadCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	d, err := cpu1.since(cpu0)
	if err != nil {
		fail("%v", err)
	}
	n := time.Duration(len(events) - 1)
	s.cpuPerMsg, s.wallPerMsg = d/n, wall/n
	// Then waiting for the next event, as between messages: what the
	// process burns doing nothing.
	time.Sleep(idleWindow)
	cpu2, err := threadCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	if d, err = cpu2.since(cpu1); err != nil {
		fail("%v", err)
	}
	s.idleRate = d * time.Second / idleWindow
	return s
}

// idleWindow is how long each process is left waiting for an event, for
// its idle CPU.
const idleWindow = 300 * time.Millisecond

// threadTimes is each thread's time on a CPU, by thread id.
type threadTimes map[int]time.Duration

// threadCPU reads the time on a CPU of each thread of pid, in ns, from
// /proc/<pid>/task/<tid>/schedstat. (/proc/<pid>/stat counts in clock
// ticks, 10 ms: too coarse for a few hundred messages.)
func threadCPU(pid int) (threadTimes, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	tt := threadTimes{}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread has just exited
		} else if err != nil {
			return nil, err
		}
		f := strings.Fields(string(b))
		if len(f) < 1 {
			return nil, fmt.Errorf("%s/%s/schedstat: %q", dir, e.Name(), b)
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s/%s/schedstat: %v", dir, e.Name(), err)
		}
		tt[tid] = time.Duration(ns)
	}
	return tt, nil
}

func (tt threadTimes) total() time.Duration {
	var sum time.Duration
	for _, d := range tt {
		sum += d
	}
	return sum
}

// since is the CPU the threads used after before. A thread that exited
// in between took its time with it: an error, not a low figure.
func (tt threadTimes) since(before threadTimes) (time.Duration, error) {
	for tid := range before {
		if _, ok := tt[tid]; !ok {
			return 0, fmt.Errorf("thread %d exited while measured: its CPU time is lost", tid)
		}
	}
	return tt.total() - before.total(), nil
}

// createEvents are n `$default` MESSAGE events, each creating a question:
// AWS's sample event with the body and request ids replaced.
func createEvents(b testing.TB, n int) [][]byte {
	var tmpl map[string]any
	if err := json.Unmarshal(sample(b, sampleMessage), &tmpl); err != nil {
		b.Fatal(err)
	}
	rc := tmpl["requestContext"].(map[string]any)
	out := make([][]byte, n)
	for i := range out {
		id := strconv.Itoa(i)
		rc["requestId"], rc["messageId"] = "Rq"+id+"=", "Mq"+id+"="
		tmpl["body"] = `{"stream":"questions","payload":{"action":"create","data":{"question_text":"Question ` + id +
			`?"},"request_id":"r` + id + `"}}`
		ev, err := json.Marshal(tmpl)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = ev
	}
	return out
}

func envInt(b *testing.B, key string, def int) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive whole number", key, v)
	}
	return n
}

// costVariants builds the variants WSBIND_BENCH_VARIANTS and
// WSBIND_BENCH_BASE select; echo is always first, the floor.
func costVariants(b *testing.B) []costVariant {
	self, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		b.Fatal(err)
	}
	trees := []struct{ prefix, dir string }{{"", self}}
	if base := os.Getenv("WSBIND_BENCH_BASE"); base != "" {
		trees = append(trees, struct{ prefix, dir string }{"base-", base})
	}
	want := map[string]bool{}
	if s := os.Getenv("WSBIND_BENCH_VARIANTS"); s != "" {
		for _, n := range strings.Split(s, ",") {
			want[n] = true
		}
	}
	pick := func(name string) bool { return len(want) == 0 || want[name] }
	_, gccErr := exec.LookPath("gcc")

	work := b.TempDir()
	echo := filepath.Join(work, "echofloor")
	if err := goBuildIn(self, echo, nil, "-tags", "lambda.norpc", "github.com/wsbind/wsbind/internal/testkit/echofloor"); err != nil {
		b.Fatal(err)
	}
	vs := []costVariant{{name: "echo", bin: echo, root: work}}
	for _, tr := range trees {
		if !pick(tr.prefix+"native") && !pick(tr.prefix+"wasmtime") && !pick(tr.prefix+"wazero") {
			continue
		}
		out := filepath.Join(work, "tree"+strconv.Itoa(len(vs)))
		tb, err := buildCostTree(b, tr.dir, out, pick(tr.prefix+"wasmtime") && gccErr == nil)
		if err != nil {
			b.Fatalf("%s: %v", tr.dir, err)
		}
		if pick(tr.prefix + "native") {
			vs = append(vs, costVariant{tr.prefix + "native", tb.native, tb.root(b), "native"})
		}
		if pick(tr.prefix + "wasmtime") {
			if gccErr != nil {
				b.Logf("%swasmtime left out: %v", tr.prefix, gccErr)
			} else {
				vs = append(vs, costVariant{tr.prefix + "wasmtime", tb.wasmtime, tb.root(b, "route.cwasm", "route.wasm"), "wasmtime"})
			}
		}
		if pick(tr.prefix + "wazero") {
			vs = append(vs, costVariant{tr.prefix + "wazero", tb.wazero, tb.root(b, "route.wasm", "route.cache"), "wazero"})
		}
	}
	return vs
}

// costTree is the route function of one source tree, built as `make
// build` builds it: the bootstraps, route.wasm, and its compiled code.
type costTree struct {
	dir                      string // route.wasm, route.cache/, route.cwasm
	native, wazero, wasmtime string // the bootstraps
}

func (t costTree) root(b *testing.B, files ...string) string {
	return taskRootFrom(b, t.dir, files...)
}

// buildCostTree builds the module at src into out.
func buildCostTree(b *testing.B, src, out string, withWasmtime bool) (costTree, error) {
	t := costTree{dir: out, native: filepath.Join(out, "bootstrap-native"), wazero: filepath.Join(out, "bootstrap"),
		wasmtime: filepath.Join(out, "bootstrap-wasmtime")}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return t, err
	}
	const pkg = "github.com/wsbind/wsbind/cmd/bootstrap"
	var wg sync.WaitGroup
	errs := make([]error, 4)
	wg.Go(func() { errs[0] = goBuildIn(src, t.native, nil, "-tags", "lambda.norpc,wsbind_native", pkg) })
	wg.Go(func() { errs[1] = goBuildIn(src, t.wazero, nil, "-tags", "lambda.norpc", pkg) })
	wg.Go(func() {
		args := append([]string{"build"}, wasmbuild.Flags...)
		cmd := exec.Command("go", append(args, "-o", filepath.Join(out, "route.wasm"), "./functions/route")...)
		cmd.Dir, cmd.Env = src, append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if o, err := cmd.CombinedOutput(); err != nil {
			errs[2] = fmt.Errorf("go build route.wasm: %v\n%s", err, o)
		}
	})
	if withWasmtime {
		// As the Makefile builds it: static, cgo.
		wg.Go(func() {
			errs[3] = goBuildIn(src, t.wasmtime, []string{"CGO_ENABLED=1", "CC=gcc"},
				"-tags", "lambda.norpc,wsbind_wasmtime,netgo,osusergo", "-ldflags=-s -extldflags=-static", pkg)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return t, err
	}
	wasm := filepath.Join(out, "route.wasm")
	// wazero's code by the pure-Go bootstrap that runs it; wasmtime's
	// (route.cwasm) by the wasmtime bootstrap, into a directory of its
	// own, so that it leaves route.cache as the other made it.
	if o, err := exec.Command(t.wazero, "-compile-cache", out, wasm).CombinedOutput(); err != nil {
		return t, fmt.Errorf("bootstrap -compile-cache: %v\n%s", err, o)
	}
	if withWasmtime {
		aot := filepath.Join(out, "aot")
		if o, err := exec.Command(t.wasmtime, "-compile-cache", aot, wasm).CombinedOutput(); err != nil {
			return t, fmt.Errorf("wasmtime bootstrap -compile-cache: %v\n%s", err, o)
		}
		if err := os.Rename(filepath.Join(aot, "route.cwasm"), filepath.Join(out, "route.cwasm")); err != nil {
			return t, err
		}
	}
	return t, nil
}

// goBuildIn builds pkg of the module at dir into out, trimmed as the
// Makefile builds the bootstrap; env adds to the environment (cgo is off
// unless it says otherwise).
func goBuildIn(dir, out string, env []string, flags ...string) error {
	pkg := flags[len(flags)-1]
	args := append([]string{"build", "-trimpath"}, flags[:len(flags)-1]...)
	if !strings.Contains(strings.Join(args, " "), "-ldflags") {
		args = append(args, "-ldflags=-s")
	}
	cmd := exec.Command("go", append(args, "-o", out, pkg)...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, o)
	}
	return nil
}

// cfsPeriodUS is the quota's period: the kernel's default, 100 ms.
const cfsPeriodUS = 100_000

// lambdaFullCPUMB is the memory size at which Lambda gives a function one
// full vCPU; below it, the share is proportional.
const lambdaFullCPUMB = 1769

// cpuQuota is a cgroup (v1 cpu controller) whose processes share
// quotaUS of CPU per period: a Lambda function's share of a vCPU.
type cpuQuota struct {
	dir     string
	quotaUS int
}

var cgroupSeq int

// newCPUQuota makes a cgroup for a function of memMB. It needs the
// cgroup v1 cpu controller mounted and writable (root, outside a
// container that hides it).
func newCPUQuota(memMB int) (*cpuQuota, error) {
	mnt, err := cpuCgroupMount()
	if err != nil {
		return nil, err
	}
	cgroupSeq++
	q := &cpuQuota{dir: filepath.Join(mnt, fmt.Sprintf("wsbind-bench-%d-%d", os.Getpid(), cgroupSeq)),
		quotaUS: min(cfsPeriodUS, cfsPeriodUS*memMB/lambdaFullCPUMB)}
	if err := os.Mkdir(q.dir, 0o755); err != nil {
		return nil, fmt.Errorf("make a cgroup under %s (needs root): %w", mnt, err)
	}
	for _, kv := range []struct {
		file string
		v    int
	}{{"cpu.cfs_period_us", cfsPeriodUS}, {"cpu.cfs_quota_us", q.quotaUS}} {
		if err := os.WriteFile(filepath.Join(q.dir, kv.file), []byte(strconv.Itoa(kv.v)), 0o644); err != nil {
			q.close()
			return nil, err
		}
	}
	return q, nil
}

// cpuCgroupMount finds where the cgroup v1 cpu controller is mounted
// (/sys/fs/cgroup/cpu, or /sys/fs/cgroup/cpu,cpuacct).
func cpuCgroupMount() (string, error) {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 || fs[2] != "cgroup" {
			continue
		}
		for _, opt := range strings.Split(fs[3], ",") {
			if opt == "cpu" {
				return fs[1], nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("the cgroup v1 cpu controller is not mounted (cgroup v2 alone is not supported)")
}

// add moves a process, all its threads, into the cgroup.
func (q *cpuQuota) add(pid int) error {
	return os.WriteFile(filepath.Join(q.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
}

// close removes the cgroup; its processes must have ended.
func (q *cpuQuota) close() {
	for range 50 { // a killed process leaves the cgroup shortly after
		if err := os.Remove(q.dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
