package emulator_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsbind/wsbind/local/emulator"
	"github.com/wsbind/wsbind/local/emulatortest"
	"github.com/wsbind/wsbind/local/faults"
)

// lcBenchTune sets the functions' concurrency from WSBIND_BENCH_INSTANCES
// (unset: the emulator's default), so its effect can be measured.
func lcBenchTune(b *testing.B) func(*emulator.Config) {
	v := os.Getenv("WSBIND_BENCH_INSTANCES")
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("WSBIND_BENCH_INSTANCES=%q: want a positive integer", v)
	}
	return func(c *emulator.Config) { c.Instances = n }
}

// lcReplyTimeout bounds a benchmark's wait for one reply.
const lcReplyTimeout = 30 * time.Second

// BenchmarkEmulator_Requests measures requests over WebSockets against one
// emulator: each client a connection sending its requests back to back,
// one in flight. It reports the request rate and the latency percentiles.
func BenchmarkEmulator_Requests(b *testing.B) {
	em := emulatortest.Start(b, lcBenchTune(b))
	// Objects to retrieve, and a full first page to list.
	setup := lcDialAll(b, em, 1, "setup")[0]
	var pks []string
	for i := range 100 {
		r, _, err := setup.do("create", "", fmt.Sprintf(`{"question_text":"seed %d"}`, i), lcReplyTimeout)
		if err != nil || r.Status != 201 || lcID(r) == "" {
			b.Fatalf("seed create: %v %s", err, r.Raw)
		}
		pks = append(pks, lcID(r))
	}
	for _, action := range []string{"create", "retrieve", "list"} {
		for _, clients := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("action=%s/clients=%d", action, clients), func(b *testing.B) {
				conns := lcDialAll(b, em, clients, "bench")
				lcRunRequests(b, conns, action, pks)
			})
		}
	}
}

func lcRunRequests(b *testing.B, conns []*lcConn, action string, pks []string) {
	want := map[string]int{"create": 201, "retrieve": 200, "list": 200}[action]
	var next atomic.Int64
	lat := make([][]time.Duration, len(conns))
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	cpu0 := lcCPU()
	for ci, c := range conns {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				var pk, data string
				switch action {
				case "create":
					data = fmt.Sprintf(`{"question_text":"bench %s %d"}`, c.name, i)
				case "retrieve":
					pk = pks[int(i)%len(pks)]
				case "list":
					data = `{"page":1}`
				}
				r, sent, err := c.do(action, pk, data, lcReplyTimeout)
				if err == nil && r.Status != want {
					err = fmt.Errorf("%s: got status %d, want %d: %s", action, r.Status, want, r.Raw)
				}
				if err != nil {
					errs[ci] = err
					next.Store(int64(b.N)) // stop the others too
					return
				}
				lat[ci] = append(lat[ci], r.At.Sub(sent))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := lcCPU() - cpu0
	b.StopTimer()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range conns {
		if problems, closed := c.state(); len(problems) > 0 || closed != nil {
			b.Fatalf("%s: %v (connection: %v)", c.name, problems, closed)
		}
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	if cpu > 0 {
		// The process's CPU (emulator and clients alike) per request:
		// steadier than the rate on a shared machine, and the rate's
		// bound on an idle one (cores / CPU per request).
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/req")
	}
	b.ReportMetric(lcMillis(lcPercentile(all, 50)), "p50-ms")
	b.ReportMetric(lcMillis(lcPercentile(all, 99)), "p99-ms")
}

// BenchmarkEmulator_Fanout measures the fan-out of creates to 500
// subscribers. One operation is a round of 50 creates from another
// connection, either one at a time (each sent once every subscriber has
// the one before: the delay of one change) or back to back (a burst: 25,000
// pushes queued at once). It reports the delay from a create's send to
// each subscriber's receipt, and fails unless every subscriber got every
// create exactly once.
func BenchmarkEmulator_Fanout(b *testing.B) {
	for _, burst := range []bool{false, true} {
		b.Run(fmt.Sprintf("burst=%v", burst), func(b *testing.B) { lcFanout(b, burst, 0) })
	}
}

// BenchmarkEmulator_Isolation is the fan-out of one create at a time to
// 500 reading subscribers, beside 0 and then 3 subscribers that never
// read (the fault harness stalls them: their queue fills, posts to them
// are throttled, until the Poster gives up on them and closes them). The
// reading subscribers' delays should not see the stuck ones: the goal
// is a p99 with stuck=3 at most 1.5 times the p99 with stuck=0, both
// measured in the same run.
func BenchmarkEmulator_Isolation(b *testing.B) {
	for _, stuck := range []int{0, 3} {
		b.Run(fmt.Sprintf("stuck=%d", stuck), func(b *testing.B) { lcFanout(b, false, stuck) })
	}
}

func lcFanout(b *testing.B, burst bool, stuck int) {
	const subscribers, creates = 500, 50
	em := emulatortest.Start(b, lcBenchTune(b))
	if stuck > 0 {
		// Subscribed, but never reading: not even the subscribe's reply.
		if err := em.Faults().Set(faults.Settings{Stuck: stuck}); err != nil {
			b.Fatal(err)
		}
		for range stuck {
			c, err := soakDial(context.Background(), em.WebSocketURL())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.ws.CloseNow() })
			msg := `{"stream":"questions","payload":{"action":"subscribe","data":{"action":"create"},"request_id":"s"}}`
			if err := c.ws.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
				b.Fatal(err)
			}
		}
	}
	subs := lcDialAll(b, em, subscribers, "sub")
	var wg sync.WaitGroup
	errs := make([]error, len(subs))
	for i, s := range subs {
		wg.Go(func() {
			r, _, err := s.do("subscribe", "", `{"action":"create"}`, lcReplyTimeout)
			if err == nil && r.Status != 200 {
				err = fmt.Errorf("subscribe: %s", r.Raw)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	writer := lcDialAll(b, em, 1, "writer")[0]
	// waitAll waits until every subscriber has want pushes.
	waitAll := func(want int) {
		deadline := time.Now().Add(2 * time.Minute)
		for _, s := range subs {
			for s.pushCount() < want {
				if time.Now().After(deadline) {
					b.Fatalf("%s: %d pushes, want %d", s.name, s.pushCount(), want)
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
	}

	sent := map[string]time.Time{} // pk → when its create was sent
	b.ResetTimer()
	for round := range b.N {
		for i := range creates {
			r, at, err := writer.do("create", "", fmt.Sprintf(`{"question_text":"fan-out %d.%d"}`, round, i), lcReplyTimeout)
			if err != nil || r.Status != 201 || lcID(r) == "" {
				b.Fatalf("create: %v %s", err, r.Raw)
			}
			sent[lcID(r)] = at
			if !burst {
				waitAll(len(sent))
			}
		}
		waitAll(len(sent))
	}
	b.StopTimer()

	// A late duplicate would arrive about now.
	time.Sleep(200 * time.Millisecond)
	var delays []time.Duration
	for _, s := range subs {
		seen := map[string]bool{}
		for _, p := range s.pushesCopy() {
			at, ok := sent[p.PK]
			switch {
			case p.Action != "create" || !ok:
				b.Fatalf("%s: a push of no create sent here: %+v", s.name, p)
			case seen[p.PK]:
				b.Fatalf("%s: create %s pushed twice", s.name, p.PK)
			}
			seen[p.PK] = true
			delays = append(delays, p.At.Sub(at))
		}
		if len(seen) != len(sent) {
			b.Fatalf("%s: got %d creates, want %d", s.name, len(seen), len(sent))
		}
		if problems, closed := s.state(); len(problems) > 0 || closed != nil {
			b.Fatalf("%s: %v (connection: %v)", s.name, problems, closed)
		}
	}
	slices.Sort(delays)
	b.ReportMetric(lcMillis(lcPercentile(delays, 50)), "fanout-p50-ms")
	b.ReportMetric(lcMillis(lcPercentile(delays, 99)), "fanout-p99-ms")
	b.ReportMetric(float64(len(delays))/b.Elapsed().Seconds(), "pushes/s")
	if stuck > 0 {
		if got := em.Faults().Counts().Stuck; got != int64(stuck) {
			b.Fatalf("the harness stalled %d connections, want %d", got, stuck)
		}
	}
}
