package emulator_test

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wsbind/wsbind/local/emulatortest"
)

// BenchmarkEmulator_Memory measures what one stored object costs the
// emulator's process: it creates objects through the WebSocket API (the
// real path: gateway, route guest, store, DynamoDB, stream, fan-out) from
// 8 clients, and reports the growth of the resident set (VmRSS) and of
// the Go heap in use per object created, each taken after a collection
// that returns freed memory to the system. A first round of creates,
// not counted, brings every guest instance, connection and buffer to its
// working size, so that the growth measured is the objects' own. The
// clients are closed before each reading, so that their bookkeeping is
// not counted. WSBIND_BENCH_OBJECTS sets the number of objects (default
// 5,000: with make bench's -count 6, about half a minute).
// WSBIND_BENCH_HEAPPROFILE=FILE writes heap profiles to FILE.before and
// FILE, before and after the objects counted, while they are still held
// (go test's -memprofile comes after the emulator has stopped);
// -memprofilerate sets their resolution.
func BenchmarkEmulator_Memory(b *testing.B) {
	objects := 5000
	if v := os.Getenv("WSBIND_BENCH_OBJECTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("WSBIND_BENCH_OBJECTS=%q: want a positive integer", v)
		}
		objects = n
	}
	const clients = 8
	for range b.N {
		em := emulatortest.Start(b, lcBenchTune(b))
		create := func(n int, round string) {
			conns := lcDialAll(b, em, clients, round)
			var next atomic.Int64
			errs := make([]error, clients)
			var wg sync.WaitGroup
			for ci, c := range conns {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(n) {
							return
						}
						r, _, err := c.do("create", "", fmt.Sprintf(`{"question_text":"object %s %d"}`, round, i), lcReplyTimeout)
						if err == nil && (r.Status != 201 || lcID(r) == "") {
							err = fmt.Errorf("create: status %d: %s", r.Status, r.Raw)
						}
						if err != nil {
							errs[ci] = err
							next.Store(int64(n))
							return
						}
					}
				})
			}
			wg.Wait()
			for _, c := range conns {
				c.c.CloseNow()
			}
			for _, err := range errs {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		create(objects/5, "warm")
		rss0, heap0 := lcMemory(b)
		if path := os.Getenv("WSBIND_BENCH_HEAPPROFILE"); path != "" {
			lcHeapProfile(b, path+".before")
		}
		create(objects, "counted")
		rss1, heap1 := lcMemory(b)
		if path := os.Getenv("WSBIND_BENCH_HEAPPROFILE"); path != "" {
			lcHeapProfile(b, path)
		}
		b.ReportMetric(float64(rss1-rss0)/float64(objects), "rss-B/object")
		b.ReportMetric(float64(heap1-heap0)/float64(objects), "heap-B/object")
	}
}

// lcMemory returns the process's resident set and the Go heap in use,
// in bytes, after a collection that returns freed memory to the system.
// The connections just closed get a moment to be torn down first.
func lcMemory(b *testing.B) (rss, heap int64) {
	b.Helper()
	for range 3 {
		runtime.GC()
		debug.FreeOSMemory()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skipf("no /proc/self/status: %v", err)
	}
	for line := range strings.SplitSeq(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("VmRSS: %q: %v", v, err)
			}
			return kb << 10, int64(ms.HeapInuse)
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0, 0
}

// lcHeapProfile writes the heap profile to path.
func lcHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}
