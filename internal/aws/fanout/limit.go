package fanout

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"golang.org/x/time/rate"
)

// SlotRate is the pace of one of slots processes sharing quota requests
// per second by static partition: quota/slots less 2%, less one. Each process
// paces with a token bucket of burst 1 emptied when an invocation starts
// (Limiter.Reset), so one slot makes at most 1 + rate·T requests in any
// window of T seconds, across the invocations it serves one after
// another; the slots together make at most slots·(rate+1) = quota in any
// second. The 2% is for the scheduler and the network: API Gateway counts
// a request when it arrives, and a request delayed on its way (a
// goroutine woken up to lateSlack late, a packet held up) bunches with
// the next; 2% absorbs 20 ms of such delay (RATIONALE: "Why does each push worker
// pace itself at 0.98·quota/slots − 1?"). It fails when the share is
// less than one request a second.
func SlotRate(quota float64, slots int) (float64, error) {
	if quota <= 0 || slots <= 0 {
		return 0, fmt.Errorf("fanout: quota %v over %d slots: both must be positive", quota, slots)
	}
	r := quota/float64(slots)*(1-jitterShare) - 1
	if r < 1 {
		return 0, fmt.Errorf("fanout: quota %v over %d slots leaves %.2f requests/s each, less than 1", quota, slots, r)
	}
	return r, nil
}

// jitterShare is the share of its rate a slot leaves for the network's
// jitter (SlotRate).
const jitterShare = 0.02

// The limiter's adaptation: over each window of adaptEvery, a window in
// which at least throttleShare of the answers (and throttleMin of them)
// were 429 halves the rate, down to base/minDivisor; a window without a
// 429 raises it by base/recoverSteps, up to base.
const (
	adaptEvery    = 100 * time.Millisecond
	throttleShare = 20 // 1 in 20: 5%
	throttleMin   = 3
	minDivisor    = 32
	recoverSteps  = 20 // back from half to full in 10 windows: 1 s
)

// Limiter paces one process's requests to API Gateway at a base rate,
// and backs off when API Gateway throttles: multiplicative decrease,
// additive recovery, judged over windows of 100 ms so that the 429s of
// one burst count once and a single client whose buffer is full (API
// Gateway answers it 429 too) does not slow everyone. It is safe for
// concurrent use.
type Limiter struct {
	base float64

	lim atomic.Pointer[rate.Limiter]

	mu       sync.Mutex
	cur      float64   // the rate now
	winStart time.Time // the window's start
	n, n429  int       // answers and 429s in the window

	throttled atomic.Int64 // 429s seen
	cuts      atomic.Int64 // decreases made
	late      atomic.Int64 // turns lost to a late wake-up

	onGrant func(at time.Time) // tests: each request's turn, as the bucket granted it
}

// NewLimiter returns a Limiter pacing at perSecond, with an empty
// bucket: its first request waits 1/perSecond.
func NewLimiter(perSecond float64) *Limiter {
	l := &Limiter{base: perSecond, cur: perSecond, winStart: time.Now()}
	l.Reset()
	return l
}

// Reset empties the bucket: a push worker calls it when an invocation
// starts, so that the burst a process accumulated while frozen does not
// add to the requests its slot's previous invocation (in another process,
// perhaps) made in the same second.
func (l *Limiter) Reset() {
	l.mu.Lock()
	cur := l.cur
	l.mu.Unlock()
	lim := rate.NewLimiter(rate.Limit(cur), 1)
	lim.Allow() // take the one token a new bucket holds
	l.lim.Store(lim)
}

// Wait blocks until req may go, or its context ends. It fails at once
// when the request's turn would come after the context's deadline.
func (l *Limiter) Wait(req *http.Request) error {
	ctx := req.Context()
	for {
		now := time.Now()
		r := l.lim.Load().ReserveN(now, 1)
		if !r.OK() {
			return errors.New("fanout: rate limiter refused a request") // burst 0: never with NewLimiter
		}
		at := now.Add(r.DelayFrom(now))
		if dl, ok := ctx.Deadline(); ok && at.After(dl) {
			r.CancelAt(now)
			return fmt.Errorf("fanout: the request's turn (in %v) would come after its deadline", at.Sub(now))
		}
		if d := at.Sub(now); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				r.Cancel()
				return context.Cause(ctx)
			}
		}
		// Woken late (the process was starved of CPU, as a Lambda
		// environment at its CPU share is for a moment): the turn is
		// lost, not caught up, or the requests of the stall would all go
		// at once and the slot's second exceed its share.
		if time.Since(at) <= lateSlack {
			if l.onGrant != nil {
				l.onGrant(at)
			}
			return nil
		}
		l.late.Add(1)
	}
}

// lateSlack is how late after its turn a request may still go (SlotRate's
// margin covers it).
const lateSlack = 5 * time.Millisecond

// Rate is the rate the Limiter paces at now.
func (l *Limiter) Rate() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

// Late is how many turns were lost because the waiting goroutine woke
// more than lateSlack after them.
func (l *Limiter) Late() int64 { return l.late.Load() }

// Throttles is how many 429s the Limiter has seen, and how many times it
// lowered its rate.
func (l *Limiter) Throttles() (seen, cuts int64) { return l.throttled.Load(), l.cuts.Load() }

// observe counts one answer and adapts the rate at a window's end.
func (l *Limiter) observe(status int) {
	if status == http.StatusTooManyRequests {
		l.throttled.Add(1)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if status == http.StatusTooManyRequests {
		l.n429++
	}
	now := time.Now()
	if now.Sub(l.winStart) < adaptEvery {
		return
	}
	next := l.cur
	switch {
	case l.n429 >= throttleMin && l.n429*throttleShare >= l.n:
		next = max(l.cur/2, l.base/minDivisor)
		l.cuts.Add(1)
	case l.n429 == 0:
		next = min(l.cur+l.base/recoverSteps, l.base)
	}
	l.winStart, l.n, l.n429 = now, 0, 0
	if next != l.cur {
		l.cur = next
		l.lim.Load().SetLimitAt(now, rate.Limit(next))
	}
}

// Client is an aws.HTTPClient that waits for the Limiter before each
// request, retries and DeleteConnection included, and tells it how API
// Gateway answered. Wrap the client apigw.PoolClient returns, and give it
// to apigw.New in the aws.Config.
type Client struct {
	Inner   aws.HTTPClient
	Limiter *Limiter
}

// Do implements aws.HTTPClient.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	if err := c.Limiter.Wait(req); err != nil {
		return nil, err
	}
	resp, err := c.Inner.Do(req)
	if err == nil {
		c.Limiter.observe(resp.StatusCode)
	}
	return resp, err
}
