package host_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/wsbind/wsbind/internal/core/store/memory"
	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/internal/sandbox/host"
)

// benchEngine is an engine of the benchmarks: mod returns the module of
// the wasm guest package pkg, compiled before the timer starts.
type benchEngine struct {
	name string
	mod  func(b *testing.B, pkg string) host.Module
}

// taggedBenchEngines are the engines a build tag adds
// (wasmtime_test.go).
var taggedBenchEngines []benchEngine

// benchEngines are the engines every benchmark compares: the native
// baseline first, then the same guest code under wazero, and under the
// engines the build's tags add.
func benchEngines() []benchEngine {
	return append([]benchEngine{
		{"engine=native", func(*testing.B, string) host.Module { return host.NativeModule(nativeApp) }},
		{"engine=wazero", func(b *testing.B, pkg string) host.Module { return sharedModule(b, pkg) }},
	}, taggedBenchEngines...)
}

// benchServices are the services of a benchmark: the memory store, a
// Poster that only counts, and no logging.
func benchServices(st *memory.Store, p host.Poster) *host.Services {
	return &host.Services{Store: st, Subscribers: st, Conns: st, Poster: p, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// BenchmarkRoute runs one frame per iteration through host.CallRoute with one
// warm instance, as the route function does on Lambda.
func BenchmarkRoute(b *testing.B) {
	ctx := context.Background()
	for _, action := range []string{"create", "retrieve"} {
		b.Run(action, func(b *testing.B) {
			for _, e := range benchEngines() {
				b.Run(e.name, func(b *testing.B) {
					mod := e.mod(b, routePkg)
					st := memory.New()
					svc := benchServices(st, nil)
					pool := host.NewPool(mod, 1)
					defer pool.Close(ctx)
					if err := pool.Warm(ctx); err != nil {
						b.Fatal(err)
					}
					m := abi.Message{ConnID: "conn-1", Frame: createFrame("What is the answer?", "r1")}
					q, err := checkQuestion(host.CallRoute(ctx, pool, svc, m), "create", 201, "What is the answer?", "r1")
					if err != nil {
						b.Fatal(err)
					}
					if action == "retrieve" {
						m.Frame = retrieveFrame(q.ID, "r1")
						if _, err := checkQuestion(host.CallRoute(ctx, pool, svc, m), "retrieve", 200, q.Text, "r1"); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportAllocs()
					for b.Loop() {
						host.CallRoute(ctx, pool, svc, m)
					}
					b.StopTimer()
					if made := pool.Made(); made != 1 {
						b.Fatalf("the pool made %d instances; the benchmark trapped", made)
					}
				})
			}
		})
	}
}

// countingPoster discards pushes and counts the deliveries.
type countingPoster struct{ n atomic.Int64 }

func (p *countingPoster) Post(_ context.Context, _ []byte, ids []string) error {
	p.n.Add(int64(len(ids)))
	return nil
}

// runFanout fans ch out once per iteration through a pool of mod, after
// checking that one fan-out reaches every subscriber and before checking
// that no call trapped.
func runFanout(b *testing.B, mod host.Module, svc *host.Services, poster *countingPoster, ch abi.Change, subscribers int) {
	b.Helper()
	ctx := context.Background()
	pool := host.NewPool(mod, 1)
	defer pool.Close(ctx)
	if err := host.CallFanout(ctx, pool, svc, ch); err != nil {
		b.Fatal(err)
	}
	if n := poster.n.Load(); n != int64(subscribers) {
		b.Fatalf("one change reached %d subscribers, want %d", n, subscribers)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := host.CallFanout(ctx, pool, svc, ch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if made := pool.Made(); made != 1 {
		b.Fatalf("the pool made %d instances; the benchmark trapped", made)
	}
}

// BenchmarkFanout runs one update change per iteration through
// host.CallFanout to 100 and to 1000 subscribers of the object's updates.
func BenchmarkFanout(b *testing.B) {
	ctx := context.Background()
	for _, subscribers := range []int{100, 1000} {
		b.Run(fmt.Sprintf("subs=%d", subscribers), func(b *testing.B) {
			for _, e := range benchEngines() {
				b.Run(e.name, func(b *testing.B) {
					st := memory.New()
					poster := &countingPoster{}
					svc := benchServices(st, poster)

					// Set the scene with the native route function: a question,
					// its subscribers, and one update of it.
					route := host.NewPool(host.NativeModule(nativeApp), 1)
					send := func(conn string, frame []byte) []byte {
						return host.CallRoute(ctx, route, svc, abi.Message{ConnID: conn, Frame: frame})
					}
					q, err := checkQuestion(send("author", createFrame("Before", "c")), "create", 201, "Before", "c")
					if err != nil {
						b.Fatal(err)
					}
					for i := range subscribers {
						frame := fmt.Appendf(nil, `{"stream":"questions","payload":{"action":"subscribe","pk":%q,"data":{"action":"update"}}}`, q.ID)
						if r, err := parseReply(send(fmt.Sprintf("conn-%03d", i), frame)); err != nil || r.Payload.ResponseStatus != 200 {
							b.Fatalf("subscribe: %+v, %v", r, err)
						}
					}
					st.Changes()
					frame := fmt.Appendf(nil, `{"stream":"questions","payload":{"action":"update","pk":%q,"data":{"question_text":"After"}}}`, q.ID)
					if r, err := parseReply(send("author", frame)); err != nil || r.Payload.ResponseStatus != 200 {
						b.Fatalf("update: %+v, %v", r, err)
					}
					changes := st.Changes()
					if len(changes) != 1 || changes[0].Kind != "update" {
						b.Fatalf("changes: %+v", changes)
					}
					ch := abi.Change(changes[0])

					runFanout(b, e.mod(b, fanoutPkg), svc, poster, ch, subscribers)
				})
			}
		})
	}
}
