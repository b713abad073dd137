package emulator

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/wsbind/wsbind/internal/aws/auth"
	"github.com/wsbind/wsbind/internal/aws/lambdahost"
	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/internal/sandbox/host"
)

// Invoker is a Lambda function as the gateway and the stream mapping call
// it: the event's JSON in, the response's JSON out. It is aws-lambda-go's
// lambda.Handler, which lambdahost.Handler implements.
type Invoker = lambda.Handler

// functions are the four Lambda functions of the deployment, running the
// very guests `make build` ships, through the host code the bootstrap
// runs.
type functions struct {
	authorizer Invoker
	connect    Invoker
	route      Invoker
	fanout     Invoker

	// bindings is what the route guest says it serves
	// (abi.ExportDescribe), for the debugger page.
	bindings []byte

	closers []func(context.Context) error
}

func (f *functions) close(ctx context.Context) error {
	var errs []error
	for i := len(f.closers) - 1; i >= 0; i-- {
		errs = append(errs, f.closers[i](ctx))
	}
	return errors.Join(errs...)
}

// loadFunctions compiles connect.wasm, route.wasm and streamfanout.wasm
// from cfg.GuestDir (through a compilation cache under cfg.CacheDir, so
// a restart loads instead of compiling) and makes the functions over svc.
// Guests are interruptible here: a runaway guest must not hang the
// emulator (on Lambda the timeout ends the environment instead).
func loadFunctions(ctx context.Context, cfg *Config, svc *host.Services, refresh time.Duration, log *slog.Logger) (*functions, error) {
	f := &functions{}
	fail := func(err error) (*functions, error) {
		f.close(ctx)
		return nil, err
	}

	v, err := auth.NewVerifier(auth.Config{HS256Secret: cfg.JWTSecret})
	if err != nil {
		return fail(fmt.Errorf("WSBIND_JWT_SECRET: %w", err))
	}
	metrics := metricsOf(*cfg)
	f.authorizer = &lambdaCtx{inv: lambdahost.NewAuthorizer(auth.NewAuthorizer(v, log), log, metrics, 0), name: "authorizer"}

	wcfg := host.WazeroConfig{Interruptible: true, GuestEnv: cfg.GuestEnv}
	if cfg.CacheDir != "" {
		c, err := host.OpenCache("", cfg.CacheDir, log)
		if err != nil {
			log.Warn("wsbind: compiling without a cache", "err", err)
		} else {
			wcfg.Cache = c
			f.closers = append(f.closers, c.Close)
		}
	}
	eng, err := host.NewWazero(ctx, wcfg)
	if err != nil {
		return fail(err)
	}
	f.closers = append(f.closers, eng.Close)

	for _, fn := range []struct {
		name string
		dst  *Invoker
	}{
		{lambdahost.NameConnect, &f.connect},
		{lambdahost.NameRoute, &f.route},
		{lambdahost.NameStreamFanout, &f.fanout},
	} {
		begin := time.Now()
		wasm, err := os.ReadFile(filepath.Join(cfg.GuestDir, fn.name+".wasm"))
		if err != nil {
			return fail(fmt.Errorf("%w (make run and wsbind run build the guests)", err))
		}
		mod, out, err := eng.CompileCached(ctx, wasm, cfg.CacheDir)
		if err != nil {
			return fail(fmt.Errorf("compile %s.wasm: %w", fn.name, err))
		}
		if !out.Hit {
			log.Info("wsbind: compiled "+fn.name+".wasm", "cache", cfg.CacheDir)
		}
		pool := host.NewPool(mod, cfg.Instances)
		f.closers = append(f.closers, func(ctx context.Context) error { pool.Close(ctx); return nil })
		if err := pool.Warm(ctx); err != nil {
			return fail(fmt.Errorf("%s: %w", fn.name, err))
		}
		if fn.name == lambdahost.NameRoute {
			if f.bindings, err = pool.Call(ctx, abi.ExportDescribe, nil); err != nil {
				// A guest built against an older wsbind: the page lists
				// no bindings, and everything else works.
				log.Warn("wsbind: route.wasm does not describe its bindings; the debugger page lists none", "err", err)
				f.bindings = []byte(`{"streams":[]}`)
			}
		}
		h, err := lambdahost.New(lambdahost.Config{Function: fn.name, Pool: pool, Services: svc, Refresh: refresh,
			Metrics: metrics, InitDuration: time.Since(begin)})
		if err != nil {
			return fail(err)
		}
		*fn.dst = newLimited(&lambdaCtx{inv: h, name: fn.name}, cfg.Instances)
	}
	return f, nil
}

// limited runs at most n calls of a function at once. Each call in flight
// holds a guest instance (a Go runtime with its own heap), so a thousand
// connections sending at once would otherwise make a thousand instances;
// on Lambda each would be its own environment.
type limited struct {
	inv Invoker
	sem chan struct{}
}

func newLimited(inv Invoker, n int) *limited {
	return &limited{inv: inv, sem: make(chan struct{}, n)}
}

func (l *limited) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-l.sem }()
	return l.inv.Invoke(ctx, payload)
}

// lambdaCtx gives each invocation the context Lambda gives it: its
// request id (lambdacontext), which the functions log.
type lambdaCtx struct {
	inv  Invoker
	name string
}

func (l *lambdaCtx) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{
		AwsRequestID:       newRequestID(),
		InvokedFunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:wsbind-local-" + l.name,
	})
	return l.inv.Invoke(ctx, payload)
}

// newRequestID is a random UUID (version 4), the form of Lambda's
// request ids.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// metricsOf is the namespace of the metrics the functions' lines embed:
// "" when cfg turns them off.
func metricsOf(cfg Config) string {
	switch cfg.Metrics {
	case "":
		return lambdahost.DefaultMetricsNamespace
	case "off":
		return ""
	}
	return cfg.Metrics
}
