package lambdahost_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsbind/wsbind/internal/lambdahost"
)

// BenchmarkColdStart measures what a Lambda cold start costs the route
// function: from exec of the bootstrap to the reply to its first $default
// event (a create, which runs the whole guest: decode, validate, store,
// reply), with the Runtime API stand-in on loopback. Each start has an
// empty TMPDIR, as a new Lambda environment has an empty /tmp, and ends
// with the process killed.
//
//   - engine=native: the bootstrap built with -tags wsbind_native, the baseline;
//   - engine=wazero-shipped: route.wasm with the compiled code `make build` ships;
//   - engine=wazero-compile: route.wasm alone, compiled at start.
//
// Reported per variant, as medians of the starts of one run:
// ms-to-reply (exec to first reply), ms-to-init (exec to the first poll
// for an event, Lambda's Init Duration), and the process's VmRSS and
// VmHWM (peak) after the first reply, in MiB. Run it with -benchtime=10x
// or more: each iteration is one process.
func BenchmarkColdStart(b *testing.B) {
	dir := buildDir(b)
	variants := []struct {
		name  string
		bin   string
		files []string
	}{
		{"engine=native", nativeBootstrap(b), nil},
		{"engine=wazero-shipped", filepath.Join(dir, "bootstrap"), []string{"route.wasm", "route.cache"}},
		{"engine=wazero-compile", filepath.Join(dir, "bootstrap"), []string{"route.wasm"}},
	}
	event := coldEvent(b)
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			root := taskRoot(b, v.files...)
			var reply, initd, rss, hwm []float64
			for b.Loop() {
				s := coldStart(b, v.bin, root, event)
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
func coldStart(b *testing.B, bin, root string, event []byte) startSample {
	b.StopTimer()
	rt, err := lambdahost.NewRuntimeAPI()
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	tmp, err := os.MkdirTemp("", "wsbind-cold-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	var logs bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = []string{"_HANDLER=route", "LAMBDA_TASK_ROOT=" + root, "WSBIND_BACKEND=memory",
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
	resp, err := rt.Invoke(ctx, event)
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
	var pr events.APIGatewayProxyResponse
	if err := json.Unmarshal(resp.Body, &pr); err != nil || !strings.Contains(pr.Body, `"response_status":201`) {
		b.Fatalf("first reply: %s (%v)\n%s", resp.Body, err, logs.String())
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
