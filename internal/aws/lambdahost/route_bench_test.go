package lambdahost_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/wsbind/wsbind/internal/aws/lambdahost"
	"github.com/wsbind/wsbind/internal/sandbox/host"
)

// BenchmarkInvokeRoute is one $default message through Handler.Invoke
// as the bootstrap serves it (the event decoded, the guest on the native
// engine, where the host's own costs show most, the reply encoded), with
// the invocation's log line: log=json writes it, its metrics embedded,
// to /dev/null (a real write, as to Lambda's pipe); log=off discards it
// unformatted; log=json-nometrics writes the line without its metrics.
// Their differences are what the line, and its metrics, cost a message.
func BenchmarkInvokeRoute(b *testing.B) {
	for _, mode := range []string{"off", "json", "json-nometrics"} {
		b.Run("log="+mode, func(b *testing.B) {
			f := newFixture()
			f.svc.Log = slog.New(slog.DiscardHandler)
			metrics := ""
			if mode != "off" {
				null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { null.Close() })
				f.svc.Log = slog.New(slog.NewJSONHandler(null, nil))
				if mode == "json" {
					metrics = "wsbind"
				}
			}
			pool := host.NewPool(host.NativeModule(nativeProgram), 1)
			b.Cleanup(func() { pool.Close(context.Background()) })
			h, err := lambdahost.New(lambdahost.Config{Function: lambdahost.NameRoute, Pool: pool, Services: f.svc,
				Metrics: metrics})
			if err != nil {
				b.Fatal(err)
			}
			ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "8f5f8e3c-5b0e-4d4c-9a53-0d6c2b0f1e2a"})
			out, err := h.Invoke(ctx, wsEvent("MESSAGE", "c1", "a0", `{"stream":"questions","payload":{"action":"create","data":{"question_text":"Q?"}}}`))
			if err != nil || !strings.Contains(string(out), `\"response_status\":201`) {
				b.Fatalf("create: %s, %v", out, err)
			}
			pk := strings.SplitN(strings.SplitN(string(out), `\"id\":\"`, 2)[1], `\"`, 2)[0]
			payload := wsEvent("MESSAGE", "c1", "YzQ9xFmvIAMF7Aw=", `{"stream":"questions","payload":{"action":"retrieve","pk":"`+pk+`","request_id":42}}`)
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				out, err := h.Invoke(ctx, payload)
				if err != nil || !strings.Contains(string(out), `\"response_status\":200`) {
					b.Fatalf("retrieve: %s, %v", out, err)
				}
			}
			// The process's CPU, every thread's (the GC's too): steadier
			// than wall time on a shared machine.
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user and system CPU time so far, in ns.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
