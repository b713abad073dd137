package fansim_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wsbind/wsbind/internal/tool/fansim"
)

// BenchmarkFansim is the fan-out simulator at a reduced size: N = 1,000
// and 10,000 subscribers, the default quota (10,000/s) on a clock dilated
// 5x (2,000 requests/s real, latencies median 100 ms, p99 400 ms real), 10
// push workers and the fan-out, 1% of posts failing with 500. Reported
// per run: the delivery time over the limit N/quota (ratio), posts/s and
// the most requests sent in any second (AWS time), CPU µs per post of the
// fan-out's process, and the connections that got the push other than
// once (must be 0). cmd/fansim runs the full sizes.
func BenchmarkFansim(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			cfg := fansim.Config{
				Sizes: []int{n}, Quota: 10000, Workers: 10, Parents: 1, MemoryMB: 512,
				Endpoint: fansim.ServerOptions{Median: 20 * time.Millisecond, P99: 80 * time.Millisecond, Fail: 0.01, Seed: 1},
				Dilate:   5, Spawn: spawn,
			}
			var last fansim.Result
			for b.Loop() {
				rs, err := fansim.Run(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				last = rs[0]
				if st := last.Server; last.Err != "" || st.Duplicates != 0 || st.Missing != 0 {
					b.Fatalf("err %q, %d duplicates, %d missing (%s)", last.Err, st.Duplicates, st.Missing, st.FirstBad)
				}
			}
			b.ReportMetric(last.Ratio(), "x-limit")
			b.ReportMetric(last.PostsPerSecond(), "posts/s")
			b.ReportMetric(last.CPU/float64(last.Server.Requests)*1e6, "cpu-µs/post")
			b.ReportMetric(float64(last.Server.MaxSent)*cfg.Dilate, "max-sent/s")
			b.ReportMetric(float64(last.Server.Throttled), "429s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
