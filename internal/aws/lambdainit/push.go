package lambdainit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wsbind/wsbind/internal/aws/apigw"
	"github.com/wsbind/wsbind/internal/aws/dynamo"
	"github.com/wsbind/wsbind/internal/aws/fanout"
	"github.com/wsbind/wsbind/internal/aws/lambdahost"
	"github.com/wsbind/wsbind/internal/sandbox/host"
)

// pushSettings are the fan-out's settings (RATIONALE: "Why does a big
// fan-out go to push workers invoked synchronously?"):
//
//   - WSBIND_PUSH_QUOTA: requests per second all fan-out posts share,
//     API Gateway's account-level throttle (default 10000);
//   - WSBIND_PUSH_WORKERS: the push function's reserved concurrency, P
//     (default 10);
//   - WSBIND_FANOUT_CONCURRENCY: the streamfanout function's, the fan-out
//     invocations at once (default 1);
//   - WSBIND_PUSH_WORKER_FUNCTION: the push function's name or ARN; empty,
//     the fan-out posts everything itself;
//   - WSBIND_PUSH_THRESHOLD: a push to more connections is chunked
//     (default fanout.DefaultThreshold).
//
// Each posting process paces at quota over P + concurrency slots (over
// concurrency alone when there is no push worker function: fanoutPoster).
type pushSettings struct {
	quota     float64
	workers   int
	parents   int
	function  string
	threshold int
	rate      float64 // one slot's
}

func pushSettingsFromEnv(getenv func(string) string) (pushSettings, error) {
	s := pushSettings{quota: 10000, workers: 10, parents: 1, threshold: fanout.DefaultThreshold, function: getenv("WSBIND_PUSH_WORKER_FUNCTION")}
	if v := getenv("WSBIND_PUSH_QUOTA"); v != "" {
		q, err := strconv.ParseFloat(v, 64)
		if err != nil || q <= 0 || math.IsInf(q, 0) || math.IsNaN(q) {
			return s, fmt.Errorf("WSBIND_PUSH_QUOTA=%q: want the requests per second the fan-out may make, a positive number (API Gateway's account default is 10000)", v)
		}
		s.quota = q
	}
	ints := []struct {
		key string
		dst *int
		min int
		why string
	}{
		{"WSBIND_PUSH_WORKERS", &s.workers, 1, "the push function's reserved concurrency"},
		{"WSBIND_FANOUT_CONCURRENCY", &s.parents, 1, "the streamfanout function's reserved concurrency"},
		{"WSBIND_PUSH_THRESHOLD", &s.threshold, 1, "the most connections a push goes to without chunking"},
	}
	for _, f := range ints {
		v := getenv(f.key)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < f.min {
			return s, fmt.Errorf("%s=%q: want %s, a whole number of at least %d", f.key, v, f.why, f.min)
		}
		*f.dst = n
	}
	r, err := fanout.SlotRate(s.quota, s.workers+s.parents)
	if err != nil {
		return s, fmt.Errorf("WSBIND_PUSH_QUOTA=%v over WSBIND_PUSH_WORKERS=%d + WSBIND_FANOUT_CONCURRENCY=%d: %w", s.quota, s.workers, s.parents, err)
	}
	s.rate = r
	return s, nil
}

// pacedPoster is an apigw Poster whose requests wait for a Limiter at
// one slot's rate.
func pacedPoster(endpoint string, awsCfg aws.Config, cfg apigw.Config, rate float64) (*apigw.Poster, *fanout.Limiter, error) {
	lim := fanout.NewLimiter(rate)
	c := cfg.Concurrency
	if c <= 0 {
		c = apigw.DefaultConcurrency
	}
	awsCfg.HTTPClient = &fanout.Client{Inner: apigw.PoolClient(awsCfg.HTTPClient, c), Limiter: lim}
	p, err := apigw.New(endpoint, awsCfg, cfg)
	if err != nil {
		return nil, nil, err
	}
	return p, lim, nil
}

// fanoutPoster is the streamfanout function's Poster: the management
// API's, paced, behind a Chunker when a push worker function is named.
func fanoutPoster(endpoint string, awsCfg aws.Config, cfg apigw.Config, env *Process) (host.Poster, error) {
	ps, err := pushSettingsFromEnv(env.getenv)
	if err != nil {
		return nil, err
	}
	if ps.function == "" {
		// No push workers: the fan-out invocations are the only
		// processes posting, and the quota is theirs alone.
		r, err := fanout.SlotRate(ps.quota, ps.parents)
		if err != nil {
			return nil, fmt.Errorf("WSBIND_PUSH_QUOTA=%v over WSBIND_FANOUT_CONCURRENCY=%d: %w", ps.quota, ps.parents, err)
		}
		p, _, err := pacedPoster(endpoint, awsCfg, cfg, r)
		return p, err
	}
	p, _, err := pacedPoster(endpoint, awsCfg, cfg, ps.rate)
	if err != nil {
		return nil, err
	}
	inv, err := fanout.NewLambdaInvoker(awsCfg, ps.function)
	if err != nil {
		return nil, err
	}
	return fanout.NewChunker(fanout.Config{Local: p, Invoker: inv, Workers: ps.workers, Threshold: ps.threshold, Log: cfg.Log})
}

// pushFromEnv builds the push worker: host code only, no guest; the
// management API at WSBIND_MANAGEMENT_ENDPOINT, paced at one slot's rate,
// and the connections and subscriptions tables to forget gone
// connections in.
func pushFromEnv(ctx context.Context, env *Process, log *slog.Logger, metrics string) (*Function, error) {
	if b := env.getenv("WSBIND_BACKEND"); b != "dynamodb" {
		return nil, fmt.Errorf("%s: WSBIND_BACKEND=%q: the push worker posts through API Gateway; want dynamodb", lambdahost.NamePush, b)
	}
	tables := dynamo.Tables{
		Items:         env.getenv("WSBIND_TABLE_ITEMS"),
		Connections:   env.getenv("WSBIND_TABLE_CONNECTIONS"),
		Subscriptions: env.getenv("WSBIND_TABLE_SUBSCRIPTIONS"),
	}
	if tables.Connections == "" || tables.Subscriptions == "" {
		return nil, errors.New("push needs WSBIND_TABLE_CONNECTIONS and WSBIND_TABLE_SUBSCRIPTIONS (to forget gone connections)")
	}
	endpoint := env.getenv("WSBIND_MANAGEMENT_ENDPOINT")
	if endpoint == "" {
		return nil, errors.New("push needs WSBIND_MANAGEMENT_ENDPOINT, https://{api-id}.execute-api.{region}.amazonaws.com/{stage}")
	}
	ps, err := pushSettingsFromEnv(env.getenv)
	if err != nil {
		return nil, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	st := dynamo.New(dynamo.Config{Client: dynamodb.NewFromConfig(awsCfg), Tables: tables})
	p, lim, err := pacedPoster(endpoint, awsCfg, apigw.Config{OnGone: st.DropConn, Log: log}, ps.rate)
	if err != nil {
		return nil, err
	}
	h := lambdahost.NewPush(&fanout.Worker{Poster: p, Limiter: lim, Log: log}, log, metrics)
	log.LogAttrs(ctx, slog.LevelInfo, "wsbind: ready", slog.String("function", lambdahost.NamePush),
		slog.Float64("rate", ps.rate), slog.Float64("quota", ps.quota), slog.Int("slots", ps.workers+ps.parents))
	return &Function{Handler: h, closers: closers{func(context.Context) error { p.Close(); return nil }}}, nil
}
