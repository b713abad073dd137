package lambdainit_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsbind/wsbind/internal/aws/lambdahost"
	"github.com/wsbind/wsbind/internal/testkit/runtimeapi"
)

// BenchmarkColdStart measures what a Lambda cold start costs each
// function: from exec of the bootstrap to the reply to its first event,
// with the Runtime API stand-in on loopback. The events run the whole
// guest: connect records a connection; route a create (decode, validate,
// store, reply); streamfanout the INSERT of a question (serialize, look
// up subscribers). Each start has an empty TMPDIR, as a new Lambda
// environment has an empty /tmp, and ends with the process killed.
//
//   - engine=native: the bootstrap built with -tags wsbind_native, the baseline;
//   - engine=wasmtime-aot: the bootstrap built with wasmtime, mapping the
//     <function>.cwasm `make build` ships (skipped without a C compiler);
//   - engine=wazero-shipped: <function>.wasm with the compiled code `make build` ships;
//   - engine=wazero-compile: <function>.wasm alone, compiled at start.
//
// Reported per variant, as medians of the starts of one run:
// ms-to-reply (exec to first reply), ms-to-init (exec to the first poll
// for an event, Lambda's Init Duration), and the process's VmRSS and
// VmHWM (peak) after the first reply, in MiB. Run it with -benchtime=10x
// or more: each iteration is one process.
func BenchmarkColdStart(b *testing.B) {
	dir := buildDir(b)
	variants := []struct {
		name   string
		engine string        // the ready line's
		bin    func() string // built on first use
		dir    func() string
		files  []string // of dir, with %s for the function
	}{
		{"engine=native", "native", func() string { return nativeBootstrap(b) }, nil, nil},
		{"engine=wasmtime-aot", "wasmtime", func() string { return filepath.Join(wasmtimeDir(b, runtime.GOARCH), "bootstrap") },
			func() string { return wasmtimeDir(b, runtime.GOARCH) }, []string{"%s.cwasm", "%s.wasm"}},
		{"engine=wazero-shipped", "wazero", func() string { return filepath.Join(dir, "bootstrap") }, nil, []string{"%s.wasm", "%s.cache"}},
		{"engine=wazero-compile", "wazero", func() string { return filepath.Join(dir, "bootstrap") }, nil, []string{"%s.wasm"}},
	}
	for _, fn := range []coldFunction{coldConnect(b), coldRoute(b), coldFanout(b)} {
		for _, v := range variants {
			b.Run("fn="+fn.name+"/"+v.name, func(b *testing.B) {
				bin := v.bin()
				var files []string
				for _, f := range v.files {
					files = append(files, fmt.Sprintf(f, fn.name))
				}
				var root string
				if v.dir != nil {
					root = taskRootFrom(b, v.dir(), files...)
				} else {
					root = taskRoot(b, files...)
				}
				var reply, initd, rss, hwm []float64
				for b.Loop() {
					s := coldStart(b, bin, root, v.engine, fn)
					reply = append(reply, ms(s.reply))
					initd = append(initd, ms(s.init))
					rss = append(rss, s.rss)
					hwm = append(hwm, s.hwm)
				}
				b.ReportMetric(median(reply), "ms-to-reply")
				b.ReportMetric(median(initd), "ms-to-init")
				b.ReportMetric(median(rss), "MiB-rss")
				b.ReportMetric(median(hwm), "MiB-hwm")
			})
		}
	}
}

// coldFunction is a function's first event and what its reply must be.
type coldFunction struct {
	name  string
	event []byte
	ok    func(reply []byte) bool
}

func coldConnect(b *testing.B) coldFunction {
	return coldFunction{lambdahost.NameConnect, sample(b, sampleConnect), func(reply []byte) bool {
		var pr events.APIGatewayProxyResponse
		return json.Unmarshal(reply, &pr) == nil && pr.StatusCode == 200
	}}
}

func coldRoute(b *testing.B) coldFunction {
	return coldFunction{lambdahost.NameRoute, coldEvent(b), func(reply []byte) bool {
		var pr events.APIGatewayProxyResponse
		return json.Unmarshal(reply, &pr) == nil && strings.Contains(pr.Body, `"response_status":201`)
	}}
}

func coldFanout(*testing.B) coldFunction {
	ev := batch(record("1", "INSERT", questionKeys("cold"), "", questionImage("cold", "Cold?", false, 1), ""))
	return coldFunction{lambdahost.NameStreamFanout, ev, func(reply []byte) bool {
		var r events.DynamoDBEventResponse
		return json.Unmarshal(reply, &r) == nil && len(r.BatchItemFailures) == 0
	}}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func coldEvent(b *testing.B) []byte {
	ev, err := json.Marshal(events.APIGatewayWebsocketProxyRequest{
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{EventType: "MESSAGE", RouteKey: "$default", ConnectionID: "cold-1"},
		Body:           `{"stream":"questions","payload":{"action":"create","data":{"question_text":"Cold?"},"request_id":"cold"}}`,
	})
	if err != nil {
		b.Fatal(err)
	}
	return ev
}

type startSample struct {
	init, reply time.Duration
	rss, hwm    float64 // MiB
}

// coldStart runs one process to its first reply. Only exec → reply is
// timed; setting up and tearing down are not.
func coldStart(b *testing.B, bin, root, engine string, fn coldFunction) startSample {
	b.StopTimer()
	rt, err := runtimeapi.New()
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	tmp, err := os.MkdirTemp("", "wsbind-cold-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	var logs logBuffer
	cmd := exec.Command(bin)
	cmd.Env = []string{"_HANDLER=" + fn.name, "LAMBDA_TASK_ROOT=" + root, "WSBIND_BACKEND=memory",
		"AWS_LAMBDA_RUNTIME_API=" + rt.Addr(), "TMPDIR=" + tmp}
	cmd.Stdout, cmd.Stderr = &logs, &logs
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	b.StartTimer()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	inited := make(chan time.Duration, 1)
	go func() {
		select {
		case <-rt.Polled():
			inited <- time.Since(start)
		case <-ctx.Done():
			inited <- 0
		}
	}()
	resp, err := rt.Invoke(ctx, fn.event)
	var s startSample
	s.reply = time.Since(start)
	b.StopTimer()

	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	if err != nil || resp.Error {
		b.Fatalf("first invoke: %+v, %v\n%s", resp, err, logs.String())
	}
	if !fn.ok(resp.Body) {
		b.Fatalf("first reply: %s\n%s", resp.Body, logs.String())
	}
	if want := `"engine":"` + engine + `"`; !strings.Contains(logs.String(), want) {
		b.Fatalf("not started with %s:\n%s", want, logs.String())
	}
	s.init = <-inited
	if s.rss, s.hwm, err = memoryOf(cmd.Process.Pid); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	return s
}

// memoryOf reads a process's resident set and its peak, in MiB.
func memoryOf(pid int) (rss, hwm float64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %q: %v", k, v, err)
		}
		if k == "VmRSS" {
			rss = kb / 1024
		} else {
			hwm = kb / 1024
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status: no VmRSS or VmHWM", pid)
	}
	return rss, hwm, sc.Err()
}
