package fansim

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"golang.org/x/time/rate"
)

// Stage is the management endpoint's stage.
const Stage = "sim"

// ServerOptions are the simulated management endpoint's behaviour.
type ServerOptions struct {
	// Median and P99 are the latency distribution of a request:
	// lognormal with that median and 99th percentile. Zero Median: no
	// latency.
	Median, P99 time.Duration
	// Fail is the share of posts answered 500 InternalServerError
	// (without delivering), 0.01 for 1%.
	Fail float64
	// Seed seeds the latency and failure draws.
	Seed uint64
}

func (o ServerOptions) args() []string {
	return []string{"-median", o.Median.String(), "-p99", o.P99.String(),
		"-fail", strconv.FormatFloat(o.Fail, 'g', -1, 64), "-seed", strconv.FormatUint(o.Seed, 10)}
}

// ServerStats are what the endpoint saw in one run.
type ServerStats struct {
	Requests   int64 // POSTs answered, whatever the status
	Delivered  int64 // posts delivered (200)
	Failed     int64 // 500s injected
	Throttled  int64 // 429s: the quota's bucket was empty
	Gone       int64 // 410s: unknown connection
	MaxSent    int   // the most requests sent (by the fan-out's clock, after its limiter) in any window of one second
	MaxSecond  int   // the most requests arriving in any window of one second
	MaxWindow  int   // the most arriving in one of the fixed one-second windows
	Duplicates int   // connections that received more than once
	Missing    int   // connections that received nothing
	FirstBad   string
	CPU        float64 // the endpoint process's CPU seconds so far (user + system)
}

// server is the endpoint: POST /{Stage}/@connections/{id}, answered after
// a latency draw; 429 LimitExceededException when the quota's token
// bucket is empty (rate quota, burst quota/2, as API Gateway's account
// throttle: 10,000/s, burst 5,000); 500 with probability Fail; else
// delivered, counted per connection. It also counts requests per second
// by the time the fan-out sent them (SentHeader), as arrivals bunch when
// this process or the network is slow: the sender's pacing is judged by
// the first.
type server struct {
	opts  ServerOptions
	sigma float64

	mu     sync.Mutex
	rng    *rand.Rand
	start  time.Time
	quota  int
	n      int
	counts []int32
	arrive []int64 // ns since start
	sent   []int64 // unix ns
	window []int   // requests per fixed second
	bucket *rate.Limiter

	requests, delivered, failed, throttled, gone atomic.Int64
}

// ServeMain runs the endpoint as a process of its own, so that its CPU
// is not counted as the fan-out's: it prints "endpoint URL" on stdout,
// then serves until stdin closes. args are ServerOptions' flags.
func ServeMain(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("fansim endpoint", flag.ContinueOnError)
	var o ServerOptions
	fs.DurationVar(&o.Median, "median", 0, "")
	fs.DurationVar(&o.P99, "p99", 0, "")
	fs.Float64Var(&o.Fail, "fail", 0, "")
	fs.Uint64Var(&o.Seed, "seed", 1, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s := newServer(o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Fprintf(stdout, "endpoint http://%s\n", ln.Addr())
	io.Copy(io.Discard, stdin)
	srv.Close()
	return nil
}

func newServer(o ServerOptions) *server {
	s := &server{opts: o, rng: rand.New(rand.NewPCG(o.Seed, 0x5eed)), start: time.Now()}
	if o.Median > 0 && o.P99 > o.Median {
		s.sigma = math.Log(float64(o.P99)/float64(o.Median)) / 2.3263478740408408 // z of 0.99
	}
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_reset":
		s.reset(w, r)
		return
	case "/_stats":
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.stats())
		return
	}
	io.Copy(io.Discard, r.Body)
	now := time.Since(s.start)
	s.mu.Lock()
	s.arrive = append(s.arrive, int64(now))
	sec := int(now / time.Second)
	for len(s.window) <= sec {
		s.window = append(s.window, 0)
	}
	s.window[sec]++
	over := !s.bucket.Allow()
	if v, err := strconv.ParseInt(r.Header.Get(SentHeader), 10, 64); err == nil {
		s.sent = append(s.sent, v)
	}
	var delay time.Duration
	if s.opts.Median > 0 {
		delay = time.Duration(float64(s.opts.Median) * math.Exp(s.sigma*s.rng.NormFloat64()))
	}
	fail := s.rng.Float64() < s.opts.Fail
	s.mu.Unlock()
	defer s.requests.Add(1)
	if delay > 0 {
		time.Sleep(delay)
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/"+Stage+"/@connections/")
	id, err := url.PathUnescape(rest)
	if !ok || err != nil || r.Method != http.MethodPost {
		apiError(w, http.StatusNotFound, "NotFoundException")
		return
	}
	switch {
	case over:
		s.throttled.Add(1)
		apiError(w, http.StatusTooManyRequests, "LimitExceededException")
		return
	case fail:
		s.failed.Add(1)
		apiError(w, http.StatusInternalServerError, "InternalServerErrorException")
		return
	}
	i, ok := connIndex(id)
	s.mu.Lock()
	if ok && i < len(s.counts) {
		s.counts[i]++
	} else {
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		s.gone.Add(1)
		apiError(w, http.StatusGone, "GoneException")
		return
	}
	s.delivered.Add(1)
	w.WriteHeader(http.StatusOK)
}

func apiError(w http.ResponseWriter, status int, typ string) {
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, `{"message":"`+typ+`"}`)
}

// reset starts a run: n connections, quota requests per second, the
// windows starting now.
func (s *server) reset(w http.ResponseWriter, r *http.Request) {
	n, err1 := strconv.Atoi(r.URL.Query().Get("n"))
	q, err2 := strconv.Atoi(r.URL.Query().Get("quota"))
	if err := errors.Join(err1, err2); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.n, s.quota, s.counts = n, q, make([]int32, n)
	s.arrive, s.window, s.start = make([]int64, 0, n+n/50), nil, time.Now()
	s.sent = make([]int64, 0, n+n/50)
	s.bucket = rate.NewLimiter(rate.Limit(q), max(1, q/2))
	s.mu.Unlock()
	for _, c := range []*atomic.Int64{&s.requests, &s.delivered, &s.failed, &s.throttled, &s.gone} {
		c.Store(0)
	}
}

func (s *server) stats() ServerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := ServerStats{Requests: s.requests.Load(), Delivered: s.delivered.Load(), Failed: s.failed.Load(),
		Throttled: s.throttled.Load(), Gone: s.gone.Load()}
	for _, c := range s.window {
		st.MaxWindow = max(st.MaxWindow, c)
	}
	st.MaxSecond, st.MaxSent = maxPerSecond(s.arrive), maxPerSecond(s.sent)
	for i, c := range s.counts {
		switch {
		case c > 1:
			st.Duplicates++
		case c == 0:
			st.Missing++
		default:
			continue
		}
		if st.FirstBad == "" {
			st.FirstBad = fmt.Sprintf("%s: %d deliveries", ConnID(i), c)
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		st.CPU = cpuSeconds(&ru)
	}
	return st
}

// maxPerSecond is the most of the times at (ns) in any window of one
// second.
func maxPerSecond(at []int64) int {
	at = slices.Clone(at)
	slices.Sort(at)
	best, lo := 0, 0
	for hi := range at {
		for at[hi]-at[lo] >= int64(time.Second) {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// SentHeader carries the time a request left the fan-out's limiter, in
// Unix nanoseconds (added after signing: not part of the signature).
const SentHeader = "X-Fansim-Sent"

// stamp is the fan-out's HTTP client under its limiter: it stamps each
// request with the time it is sent.
type stamp struct{ inner aws.HTTPClient }

func (c stamp) Do(req *http.Request) (*http.Response, error) {
	req.Header.Set(SentHeader, strconv.FormatInt(time.Now().UnixNano(), 10))
	return c.inner.Do(req)
}

func cpuSeconds(ru *syscall.Rusage) float64 {
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// ConnID is the id of the i-th simulated connection: 16 characters, as
// API Gateway's are.
func ConnID(i int) string { return fmt.Sprintf("Sim%012d=", i) }

func connIndex(id string) (int, bool) {
	s, ok := strings.CutPrefix(id, "Sim")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "=")
	i, err := strconv.Atoi(s)
	return i, ok && err == nil && i >= 0
}

// endpoint is the endpoint process, seen from the simulator.
type endpoint struct {
	cmd   interface{ Wait() error }
	stdin io.Closer
	url   string
	hc    *http.Client
}

// startEndpoint starts the endpoint process cmd (its stdin and stdout
// not yet set) and reads its URL.
func startEndpoint(cmd *execCmd) (*endpoint, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("fansim: endpoint process: %w", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	u, ok := strings.CutPrefix(strings.TrimSpace(line), "endpoint ")
	if err != nil || !ok {
		stdin.Close()
		cmd.Wait()
		return nil, fmt.Errorf("fansim: endpoint process said %q: %v", line, err)
	}
	return &endpoint{cmd: cmd, stdin: stdin, url: u, hc: &http.Client{Timeout: time.Minute}}, nil
}

func (e *endpoint) close() error {
	e.stdin.Close()
	return e.cmd.Wait()
}

func (e *endpoint) reset(n, quota int) error {
	resp, err := e.hc.Post(fmt.Sprintf("%s/_reset?n=%d&quota=%d", e.url, n, quota), "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("fansim: reset: %s", resp.Status)
	}
	return nil
}

func (e *endpoint) stats() (ServerStats, error) {
	var st ServerStats
	resp, err := e.hc.Get(e.url + "/_stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}
