// Package fansim is the fan-out simulator: the real fan-out code (the
// streamfanout Handler, with the native guest and the memory store,
// serving a DynamoDB stream event of one change whose subscribers are N
// connections; its Poster the fanout Chunker, its push workers run
// in-process as instances of the real push Handler, each with its own
// apigw Poster and Limiter) against a simulated management endpoint in a
// process of its own (latency drawn from a lognormal distribution, a
// quota per one-second window answered 429 beyond, a share of posts
// failing with 500). It reports, per N, the delivery time against the
// limit N/quota, the posts per second, the CPU seconds of the fan-out's
// process, the most requests the endpoint saw in any second, the
// connections that got the push more or less than once, and the cost on
// AWS at a Lambda memory size.
//
// A dilated clock lets the machine keep up: with Dilate d, the endpoint's
// latencies are d times longer and the quota d times smaller, so the
// posts go d times slower; times are reported divided by d (AWS time),
// while CPU per post, which dilation does not change, is reported as
// measured. `go run ./cmd/fansim` runs it.
package fansim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/wsbind/wsbind/bindings"
	"github.com/wsbind/wsbind/internal/aws/apigw"
	"github.com/wsbind/wsbind/internal/aws/fanout"
	"github.com/wsbind/wsbind/internal/aws/lambdahost"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/core/store/memory"
	"github.com/wsbind/wsbind/internal/sandbox/guest"
	"github.com/wsbind/wsbind/internal/sandbox/host"
	"github.com/wsbind/wsbind/resource"
)

type execCmd = exec.Cmd

// Config configures a simulation.
type Config struct {
	// Sizes are the subscriber counts to run, one run each.
	Sizes []int
	// Quota is the requests per second shared by the fan-out (AWS time).
	Quota float64
	// Workers is the push worker function's reserved concurrency;
	// Parents the fan-out function's (each takes one share of Quota).
	Workers, Parents int
	// Threshold is the chunking threshold; 0 means fanout's default.
	Threshold int
	// MemoryMB is the Lambda memory size, for the cost (both functions).
	MemoryMB int
	// Endpoint is the management endpoint's behaviour (AWS time: the
	// simulator dilates it).
	Endpoint ServerOptions
	// Dilate slows the clock by this factor (1: real time).
	Dilate float64
	// Spawn makes the command of the endpoint process, with args to pass
	// to ServeMain.
	Spawn func(args []string) *exec.Cmd
	// Log receives the fan-out's logs; nil discards them.
	Log *slog.Logger
}

// Result is one run.
type Result struct {
	N           int
	Delivery    time.Duration // from the stream event in to the handler's answer, AWS time
	Limit       time.Duration // N / Quota
	Wall        time.Duration // as measured
	CPU         float64       // the fan-out process's CPU seconds (user + system)
	EndpointCPU float64       // the endpoint process's
	Invocations int           // push worker invocations
	WorkerTime  time.Duration // their durations summed, AWS time
	FrameBytes  int
	Server      ServerStats
	Throttles   int64 // 429s the limiters saw
	Cuts        int64 // times they lowered their rate
	Err         string
}

// Ratio is the delivery time over the limit.
func (r *Result) Ratio() float64 { return float64(r.Delivery) / float64(r.Limit) }

// PostsPerSecond is N over the delivery time (AWS time).
func (r *Result) PostsPerSecond() float64 { return float64(r.N) / r.Delivery.Seconds() }

// Prices, us-east-1, arm64 (docs/aws-limits.md).
const (
	pricePerGBs      = 0.0000133334
	pricePerRequest  = 0.20 / 1e6
	pricePerMessage  = 1.00 / 1e6 // per 32 KB
	messageUnitBytes = 32 << 10
)

// Cost is the estimated AWS cost of the run in dollars: Lambda GB-s
// (the fan-out invocation and the workers'), Lambda requests, API
// Gateway messages (every PostToConnection request, in 32 KB units).
func (r *Result) Cost(memoryMB int) (lambdaGBs, lambdaUSD, requestsUSD, messagesUSD float64) {
	gb := float64(memoryMB) / 1024
	lambdaGBs = gb * (r.Delivery.Seconds() + r.WorkerTime.Seconds())
	lambdaUSD = lambdaGBs * pricePerGBs
	requestsUSD = float64(1+r.Invocations) * pricePerRequest
	units := max(1, (r.FrameBytes+messageUnitBytes-1)/messageUnitBytes)
	messagesUSD = float64(r.Server.Requests) * float64(units) * pricePerMessage
	return
}

// Run runs the simulation once per size.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.Dilate <= 0 {
		cfg.Dilate = 1
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	slots := cfg.Workers + cfg.Parents
	quota := cfg.Quota / cfg.Dilate
	rate, err := fanout.SlotRate(quota, slots)
	if err != nil {
		return nil, err
	}
	eo := cfg.Endpoint
	eo.Median = time.Duration(float64(eo.Median) * cfg.Dilate)
	eo.P99 = time.Duration(float64(eo.P99) * cfg.Dilate)
	ep, err := startEndpoint(cfg.Spawn(eo.args()))
	if err != nil {
		return nil, err
	}
	defer ep.close()
	var out []Result
	for _, n := range cfg.Sizes {
		r, err := runOne(ctx, &cfg, ep, n, int(math.Floor(quota)), rate)
		if err != nil {
			return out, fmt.Errorf("n=%d: %w", n, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// system is one fan-out deployment: the streamfanout handler and its
// push workers, fresh for each run.
type system struct {
	handler  *lambdahost.Handler
	limiters []*fanout.Limiter
	posters  []*apigw.Poster
	invokes  atomic.Int64
	workerNs atomic.Int64
	pool     *host.Pool
}

func (s *system) close() {
	for _, p := range s.posters {
		p.Close()
	}
	s.pool.Close(context.Background())
}

// timed counts a worker's invocations and their durations.
type timed struct {
	h lambda.Handler
	s *system
}

func (t timed) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	start := time.Now()
	out, err := t.h.Invoke(ctx, payload)
	t.s.workerNs.Add(int64(time.Since(start)))
	t.s.invokes.Add(1)
	return out, err
}

func awsConfig(hc aws.HTTPClient) aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDSIM", "secret", ""), HTTPClient: hc}
}

// newSystem builds the deployment over st, posting to endpoint.
func newSystem(cfg *Config, st *memory.Store, endpoint string, rate float64) (*system, error) {
	s := &system{}
	newPoster := func(onGone func(context.Context, string) error) (*apigw.Poster, *fanout.Limiter, error) {
		lim := fanout.NewLimiter(rate)
		hc := &fanout.Client{Inner: stamp{apigw.PoolClient(nil, apigw.DefaultConcurrency)}, Limiter: lim}
		// The Poster's timers run on the dilated clock too.
		d := func(v time.Duration) time.Duration { return time.Duration(float64(v) * cfg.Dilate) }
		p, err := apigw.New(endpoint, awsConfig(hc), apigw.Config{OnGone: onGone, Log: cfg.Log,
			MinBackoff: d(apigw.DefaultMinBackoff), MaxBackoff: d(apigw.DefaultMaxBackoff),
			Patience: d(apigw.DefaultPatience), FlushWait: d(apigw.DefaultFlushWait)})
		if err != nil {
			return nil, nil, err
		}
		s.posters = append(s.posters, p)
		s.limiters = append(s.limiters, lim)
		return p, lim, nil
	}
	var workers []lambda.Handler
	for range cfg.Workers {
		p, lim, err := newPoster(st.DropConn)
		if err != nil {
			return nil, err
		}
		workers = append(workers, timed{lambdahost.NewPush(&fanout.Worker{Poster: p, Limiter: lim, Log: cfg.Log}, cfg.Log, ""), s})
	}
	local, _, err := newPoster(st.DropConn)
	if err != nil {
		return nil, err
	}
	// The worker function's timeout: 15 minutes, Lambda's most, dilated.
	inv := fanout.NewLocalInvoker(time.Duration(float64(15*time.Minute)*cfg.Dilate), workers...)
	c, err := fanout.NewChunker(fanout.Config{Local: local, Invoker: inv, Workers: cfg.Workers, Threshold: cfg.Threshold, Log: cfg.Log})
	if err != nil {
		return nil, err
	}
	svc := &host.Services{Store: st, Subscribers: st, Conns: st, Poster: c, Log: cfg.Log}
	s.pool = host.NewPool(host.NativeModule(program), 1)
	h, err := lambdahost.New(lambdahost.Config{Function: lambdahost.NameStreamFanout, Pool: s.pool, Services: svc})
	if err != nil {
		return nil, err
	}
	s.handler = h
	return s, nil
}

// program is the guest code linked in (the native engine), as the
// bootstrap built with -tags wsbind_native runs it.
func program(c guest.Caller) map[string]guest.Entry {
	return guest.All(c, bindings.Registry(resource.Settings{}))
}

// Topic is what the simulated connections subscribe to: every update of
// a question.
var topic = store.Topic("questions", "update", "")

func runOne(ctx context.Context, cfg *Config, ep *endpoint, n, quota int, rate float64) (Result, error) {
	res := Result{N: n, Limit: time.Duration(float64(n) / cfg.Quota * float64(time.Second))}
	st := memory.New()
	for i := range n {
		if err := st.Subscribe(ctx, store.Subscription{Topic: topic, ConnID: ConnID(i)}); err != nil {
			return res, err
		}
	}
	sys, err := newSystem(cfg, st, ep.url+"/"+Stage, rate)
	if err != nil {
		return res, err
	}
	defer sys.close()
	text := "simulated change " + strconv.Itoa(n)
	event := streamEvent("q1", text)
	if err := ep.reset(n, quota); err != nil {
		return res, err
	}
	cpu0 := selfCPU()
	start := time.Now()
	out, err := sys.handler.Invoke(ctx, event)
	res.Wall = time.Since(start)
	res.CPU = selfCPU() - cpu0
	res.Delivery = time.Duration(float64(res.Wall) / cfg.Dilate)
	res.WorkerTime = time.Duration(float64(sys.workerNs.Load()) / cfg.Dilate)
	res.Invocations = int(sys.invokes.Load())
	if err != nil {
		res.Err = err.Error()
	} else if string(out) != `{"batchItemFailures":[]}` {
		res.Err = "batch item failures: " + string(out)
	}
	for _, l := range sys.limiters {
		seen, cuts := l.Throttles()
		res.Throttles += seen
		res.Cuts += cuts
	}
	// The frame as the guest makes it: an update push of question q1.
	res.FrameBytes = len(`{"stream":"questions","payload":{"action":"update","data":{"id":"q1","question_text":"` + text +
		`","pub_date":"2026-01-02T03:04:05Z","published":false},"model":"polls.question","pk":"q1","version":2,"cursor":"1.1767323045000000"}}`)
	if res.Server, err = ep.stats(); err != nil {
		return res, err
	}
	res.EndpointCPU = res.Server.CPU
	return res, nil
}

func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return cpuSeconds(&ru)
}

// streamEvent is a DynamoDB stream event, as Lambda delivers it, of one
// MODIFY of question id: its text changed to text.
func streamEvent(id, text string) []byte {
	image := func(text string, version int) map[string]any {
		return map[string]any{
			"_stream": map[string]string{"S": "questions"}, "id": map[string]string{"S": id},
			"_version": map[string]string{"N": strconv.Itoa(version)}, "question_text": map[string]string{"S": text},
			"pub_date": map[string]string{"S": "2026-01-02T03:04:05Z"}, "published": map[string]bool{"BOOL": false},
		}
	}
	rec := map[string]any{
		"eventID": "e1", "eventName": "MODIFY", "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
		"dynamodb": map[string]any{
			"ApproximateCreationDateTime": time.Now().Unix(),
			"Keys":                        map[string]any{"_stream": map[string]string{"S": "questions"}, "id": map[string]string{"S": id}},
			"OldImage":                    image("before", 1), "NewImage": image(text, 2),
			"SequenceNumber": "100", "SizeBytes": 200, "StreamViewType": "NEW_AND_OLD_IMAGES",
		},
		"eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/items/stream/2026-01-01T00:00:00.000",
	}
	b, _ := json.Marshal(map[string]any{"Records": []any{rec}})
	return b
}

// Table writes the results as a Markdown table.
func Table(w io.Writer, cfg Config, rs []Result) {
	fmt.Fprintf(w, "quota %.0f/s, %d push workers + %d fan-out, %d MB, endpoint latency median %v p99 %v, %.1f%% 500s, clock dilated %gx\n\n",
		cfg.Quota, cfg.Workers, cfg.Parents, cfg.MemoryMB, cfg.Endpoint.Median, cfg.Endpoint.P99, cfg.Endpoint.Fail*100, cfg.Dilate)
	fmt.Fprintln(w, "| N | delivery | limit N/Q | ratio | posts/s | CPU s | CPU µs/post | max/s sent (arrived) | quota/s | 429 | 500 | dup | missing | invokes | Lambda GB-s | cost $ (Lambda + req + msgs) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		gbs, l, q, m := r.Cost(cfg.MemoryMB)
		fmt.Fprintf(w, "| %d | %.2f s | %.2f s | %.2f | %.0f | %.1f | %.0f | %d (%d) | %d | %d | %d | %d | %d | %d | %.1f | %.4f (%.4f + %.6f + %.4f) |\n",
			r.N, r.Delivery.Seconds(), r.Limit.Seconds(), r.Ratio(), r.PostsPerSecond(), r.CPU, r.CPU/float64(r.Server.Requests)*1e6,
			r.Server.MaxSent, r.Server.MaxSecond, int(math.Floor(cfg.Quota/cfg.Dilate)), r.Server.Throttled, r.Server.Failed, r.Server.Duplicates, r.Server.Missing,
			r.Invocations, gbs, l+q+m, l, q, m)
		if r.Err != "" {
			fmt.Fprintf(w, "\nN=%d: %s\n", r.N, r.Err)
		}
	}
}

// ParseSizes reads "1000,10k,1M".
func ParseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		mult := 1
		switch {
		case strings.HasSuffix(f, "k"):
			mult, f = 1000, strings.TrimSuffix(f, "k")
		case strings.HasSuffix(f, "M"):
			mult, f = 1000000, strings.TrimSuffix(f, "M")
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("size %q: want a positive count, such as 1000, 10k or 1M", f)
		}
		out = append(out, n*mult)
	}
	return out, nil
}
