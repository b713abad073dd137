package lambdahost_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wsbind/wsbind/internal/aws/apigw"
	"github.com/wsbind/wsbind/internal/aws/lambdahost"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/sandbox/host"
	"github.com/wsbind/wsbind/internal/testkit/apigwtest"
	"github.com/wsbind/wsbind/internal/testkit/wasmbuild"
)

const fanoutPkg = "github.com/wsbind/wsbind/functions/streamfanout"

// fanoutWasm is the streamfanout guest compiled once per test binary, on
// an engine that lives as long as the process.
var fanoutWasm = sync.OnceValues(func() (host.Module, error) {
	wasm, err := wasmbuild.Build(fanoutPkg)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	eng, err := host.NewWazero(ctx, host.WazeroConfig{})
	if err != nil {
		return nil, err
	}
	return eng.Compile(ctx, wasm)
})

// BenchmarkFanoutDelivery measures one change fanned out to every
// subscriber of its stream's updates, through the real streamfanout
// handler and apigw.Poster (default concurrency) with the SDK's client, to
// a management endpoint on loopback that answers each post in 20 ms, as
// a region's API Gateway roughly does. Reported: ms/change, from the
// stream record in to the last post answered. Every subscriber must have
// received every change's push exactly once, in order.
//
// The floor is subscribers × 20 ms / concurrency: 78 ms for 1,000 and
// 781 ms for 10,000 at 256 posts in flight.
func BenchmarkFanoutDelivery(b *testing.B) {
	const latency = 20 * time.Millisecond
	for _, subs := range []int{1000, 10000} {
		for _, e := range []struct {
			name string
			mod  func() (host.Module, error)
		}{
			{"engine=native", func() (host.Module, error) { return nil, nil }}, // the fixture's native default
			{"engine=wazero", fanoutWasm},
		} {
			b.Run(fmt.Sprintf("subs=%d/%s", subs, e.name), func(b *testing.B) {
				mod, err := e.mod()
				if err != nil {
					b.Fatal(err)
				}
				f, srv := newGatewayFixture(b, apigwtest.Options{Latency: latency}, apigw.Config{})
				f.svc.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
				ids := make([]string, subs)
				ctx := context.Background()
				for i := range ids {
					ids[i] = fmt.Sprintf("conn-%05d=", i)
					if err := f.store.Subscribe(ctx, store.Subscription{Topic: store.Topic("questions", "update", ""), ConnID: ids[i]}); err != nil {
						b.Fatal(err)
					}
				}
				srv.Connect(ids...)
				h := f.handler(b, lambdahost.NameStreamFanout, mod)

				var texts []string
				change := func() {
					text := "change " + strconv.Itoa(len(texts))
					texts = append(texts, text)
					out, err := h.Invoke(ctx, batch(modify(strconv.Itoa(len(texts)), "q1", text)))
					if err != nil || string(out) != `{"batchItemFailures":[]}` {
						b.Fatalf("change %d: %s, %v", len(texts), out, err)
					}
				}
				change() // warm: the guest instance and the connection pool
				for b.Loop() {
					change()
				}
				b.StopTimer()
				b.ReportMetric(float64(b.Elapsed())/float64(time.Millisecond)/float64(b.N), "ms/change")
				b.ReportMetric(0, "ns/op") // ms/change says it
				b.ReportMetric(float64(srv.Stats().MaxInFlight), "max-in-flight")

				bad := 0
				for _, id := range ids {
					got := received(srv, id)
					ok := len(got) == len(texts)
					for i := 0; ok && i < len(got); i++ {
						ok = got[i] == updatePush("q1", texts[i])
					}
					if !ok {
						if bad++; bad <= 3 {
							b.Errorf("%s received %d pushes, want %d, one per change in order: %.200q", id, len(got), len(texts), got)
						}
					}
				}
				if bad > 0 {
					b.Fatalf("%d of %d subscribers did not get every push exactly once", bad, subs)
				}
				if st := srv.Stats(); st.Requests != subs*len(texts) {
					b.Fatalf("posts: got %d, want %d", st.Requests, subs*len(texts))
				}
			})
		}
	}
}
