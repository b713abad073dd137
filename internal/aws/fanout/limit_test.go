package fanout_test

import (
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsbind/wsbind/internal/aws/fanout"
)

func TestSlotRate(t *testing.T) {
	r, err := fanout.SlotRate(10000, 11)
	if want := 10000.0/11*0.98 - 1; err != nil || math.Abs(r-want) > 1e-9 {
		t.Errorf("SlotRate(10000, 11) = %v, %v; want %v", r, err, want)
	}
	for _, tc := range []struct {
		q     float64
		slots int
		want  string
	}{
		{0, 3, "must be positive"},
		{100, 0, "must be positive"},
		{10, 10, "less than 1"},
	} {
		if _, err := fanout.SlotRate(tc.q, tc.slots); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SlotRate(%v, %d): got %v, want %q", tc.q, tc.slots, err, tc.want)
		}
	}
}

// clock is an inner HTTP client that records when each request reached
// it and answers status.
type clock struct {
	mu     sync.Mutex
	at     []time.Time
	status int
}

func (c *clock) Do(*http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.at = append(c.at, time.Now())
	st := c.status
	c.mu.Unlock()
	if st == 0 {
		st = 200
	}
	return &http.Response{StatusCode: st, Body: http.NoBody}, nil
}

// maxPerSecond is the most requests in any window of one second.
func maxPerSecond(at []time.Time) int {
	at = slices.Clone(at)
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	best, lo := 0, 0
	for hi := range at {
		for at[hi].Sub(at[lo]) >= time.Second {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// Slots sharing a quota are granted no more than the quota in any
// second, even when each slot's invocations run in different processes
// one after the other (a fresh Limiter, or one thawed with a full bucket,
// Reset at each invocation's start), with many requests in flight in
// each. The grants are what the Limiter controls; when the requests reach
// the client also depends on the scheduler (a goroutine woken late
// bunches with the next), which the 2% margin is for, and which the
// simulator measures.
func TestLimiter_Bound(t *testing.T) {
	const quota, slots = 150, 3
	r, err := fanout.SlotRate(quota, slots)
	if err != nil {
		t.Fatal(err)
	}
	inner := &clock{}
	var grantMu sync.Mutex
	var grants []time.Time
	onGrant := func(at time.Time) {
		grantMu.Lock()
		grants = append(grants, at)
		grantMu.Unlock()
	}
	var wg sync.WaitGroup
	stop := time.Now().Add(2500 * time.Millisecond)
	for range slots {
		wg.Go(func() {
			procs := []*fanout.Limiter{fanout.NewLimiter(r), fanout.NewLimiter(r)}
			for _, l := range procs {
				fanout.OnGrant(l, onGrant)
			}
			time.Sleep(300 * time.Millisecond) // the second process's bucket fills while frozen
			for inv := 0; time.Now().Before(stop); inv++ {
				lim := procs[inv%2]
				lim.Reset()
				c := &fanout.Client{Inner: inner, Limiter: lim}
				var in sync.WaitGroup
				for range 4 {
					in.Go(func() {
						for range 5 {
							req, _ := http.NewRequest("POST", "http://x/", nil)
							if _, err := c.Do(req); err != nil {
								t.Error(err)
								return
							}
						}
					})
				}
				in.Wait()
			}
		})
	}
	wg.Wait()
	got := maxPerSecond(grants)
	if got > quota {
		t.Errorf("%d requests granted in one second, quota %d", got, quota)
	}
	if len(grants) != len(inner.at) {
		t.Errorf("%d grants, %d requests", len(grants), len(inner.at))
	}
	// And the slots use their share: at least 90% of it over the run.
	if min := int(0.9 * 2.2 * r * slots); len(inner.at) < min {
		t.Errorf("%d requests in 2.5 s, want at least %d", len(inner.at), min)
	}
	t.Logf("rate %.1f/s per slot: %d requests, at most %d granted and %d sent in a second (quota %d)", r, len(inner.at), got, maxPerSecond(inner.at), quota)
}

// When most answers are 429, the Limiter halves its rate (at most once
// per window); when they stop, it recovers to its base.
func TestLimiter_BacksOff(t *testing.T) {
	inner := &clock{status: 429}
	lim := fanout.NewLimiter(400)
	c := &fanout.Client{Inner: inner, Limiter: lim}
	do := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); {
			req, _ := http.NewRequest("POST", "http://x/", nil)
			c.Do(req)
		}
	}
	do(350 * time.Millisecond)
	if r := lim.Rate(); r > 200 {
		t.Fatalf("rate %v after 350 ms of 429s, want halved at least once from 400", r)
	}
	seen, cuts := lim.Throttles()
	if seen == 0 || cuts == 0 || cuts > 4 {
		t.Fatalf("throttles %d, cuts %d: want some, and at most one cut per 100 ms", seen, cuts)
	}
	inner.mu.Lock()
	inner.status = 200
	inner.mu.Unlock()
	do(2500 * time.Millisecond)
	if r := lim.Rate(); r != 400 {
		t.Fatalf("rate %v after 2.5 s of 200s, want back at 400", r)
	}
}

// One client whose buffer is full (a 429 now and then among many 200s)
// does not slow the Limiter.
func TestLimiter_IgnoresOneSlowClient(t *testing.T) {
	inner := &clock{}
	lim := fanout.NewLimiter(1000)
	c := &fanout.Client{Inner: inner, Limiter: lim}
	for i := range 600 {
		inner.mu.Lock()
		inner.status = 200
		if i%50 == 0 {
			inner.status = 429
		}
		inner.mu.Unlock()
		req, _ := http.NewRequest("POST", "http://x/", nil)
		c.Do(req)
	}
	if r := lim.Rate(); r != 1000 {
		t.Fatalf("rate %v, want 1000: 2%% of 429s is one client, not the account's quota", r)
	}
}
