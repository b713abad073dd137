package emulator_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wsbind/wsbind/local/emulator"
	"github.com/wsbind/wsbind/local/emulatortest"
)

// BenchmarkEmulator_Replay measures a resume over a gap of 10,000
// changes: a new connection subscribes since a cursor taken before them,
// and is pushed all of them (marked replay) before its subscribe is
// answered. It reports the replayed changes per second, from the
// subscribe sent to its reply.
func BenchmarkEmulator_Replay(b *testing.B) {
	const gap = 10000
	em := emulatortest.Start(b, func(c *emulator.Config) {
		// No overlap, so that exactly the gap is replayed; a limit above it.
		c.GuestEnv = append(c.GuestEnv, "WSBIND_REPLAY_OVERLAP=0s", "WSBIND_REPLAY_LIMIT=20000")
	})
	setup := lcDialAll(b, em, 1, "setup")[0]
	r, _, err := setup.do("list", "", "", lcReplyTimeout)
	if err != nil || r.Status != 200 {
		b.Fatalf("list: %v %s", err, r.Raw)
	}
	var lp struct {
		Payload struct {
			Cursor string `json:"cursor"`
		} `json:"payload"`
	}
	json.Unmarshal([]byte(r.Raw), &lp)
	watcher := lcDialAll(b, em, 1, "watch")[0]
	if r, _, err := watcher.do("subscribe", "", `{"action":"create"}`, lcReplyTimeout); err != nil || r.Status != 200 {
		b.Fatalf("subscribe: %v %s", err, r.Raw)
	}
	writers := lcDialAll(b, em, 16, "w")
	var wg sync.WaitGroup
	for i, w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range gap / len(writers) {
				if r, _, err := w.do("create", "", fmt.Sprintf(`{"question_text":"gap %d-%d"}`, i, j), lcReplyTimeout); err != nil || r.Status != 201 {
					b.Errorf("create: %v %s", err, r.Raw)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Every change fanned out, so every change recorded.
	for deadline := time.Now().Add(2 * time.Minute); watcher.pushCount() < gap; {
		if time.Now().After(deadline) {
			b.Fatalf("fan-out: %d of %d pushes after 2 minutes", watcher.pushCount(), gap)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.ResetTimer()
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		late := lcDialAll(b, em, 1, fmt.Sprintf("late%d", i))[0]
		start := time.Now()
		r, _, err := late.do("subscribe", "", `{"action":"create","since":"`+lp.Payload.Cursor+`"}`, 5*time.Minute)
		took := time.Since(start)
		if err != nil || r.Status != 200 {
			b.Fatalf("subscribe since: %v %s", err, r.Raw)
		}
		// Replayed before the reply: all of them are here.
		if n := late.pushCount(); n != gap {
			b.Fatalf("replayed %d pushes before the reply, want %d", n, gap)
		}
		total += took
		late.c.CloseNow()
	}
	b.ReportMetric(float64(gap*b.N)/total.Seconds(), "changes/s")
	b.ReportMetric(total.Seconds()/float64(b.N), "s/resume")
}
