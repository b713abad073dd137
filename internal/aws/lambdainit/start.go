// Package lambdainit is a Lambda process's init phase: it reads the
// environment (_HANDLER, WSBIND_*, $LAMBDA_TASK_ROOT), builds the services
// the setting selects (the DynamoDB store and the management API's
// Poster, or the in-memory store), loads the function's guest with the
// engine it names, and hands back the lambdahost.Handler that serves the
// events. cmd/bootstrap is a thin main over FromEnv and CompileCaches.
//
//	f, err := lambdainit.FromEnv(ctx, lambdainit.Process{})
//	lambda.Start(f)
package lambdainit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/tetratelabs/wazero"

	"github.com/wsbind/wsbind/internal/aws/apigw"
	"github.com/wsbind/wsbind/internal/aws/auth"
	"github.com/wsbind/wsbind/internal/aws/dynamo"
	"github.com/wsbind/wsbind/internal/aws/lambdahost"
	"github.com/wsbind/wsbind/internal/core/router"
	"github.com/wsbind/wsbind/internal/core/store/memory"
	"github.com/wsbind/wsbind/internal/sandbox/host"
)

// Process is the process FromEnv starts in: its environment and what
// the binary links. The zero value is the process's own.
type Process struct {
	// Vars is the environment, KEY=VALUE. nil means os.Environ().
	Vars []string
	// Program, when not nil, is the guest code linked into the binary:
	// the native engine, for the native baseline (bootstrap built with
	// -tags wsbind_native). nil means a wasm engine (WSBIND_ENGINE):
	// wasmtime running <task root>/<function>.cwasm, or wazero running
	// <function>.wasm.
	Program host.Program
	// CacheRoot holds the writable compilation caches, one directory per
	// function. "" means wsbind-cache in os.TempDir() (/tmp on Lambda).
	CacheRoot string
	// Log receives the host's logs. nil means slog.Default().
	Log *slog.Logger
}

func (e *Process) getenv(key string) string {
	vars := e.Vars
	if vars == nil {
		vars = os.Environ()
	}
	v := ""
	for _, kv := range vars {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val // the last one wins, as in os.Getenv
		}
	}
	return v
}

// hostOnly are the WSBIND_ settings that configure the host itself: where
// the data lives and how tokens are verified. Guests never see them; the
// auth secret in particular must not reach binding code.
var hostOnly = []string{"WSBIND_BACKEND=", "WSBIND_TABLE_", "WSBIND_MANAGEMENT_ENDPOINT=", "WSBIND_AUTH_", "WSBIND_ENGINE=", "WSBIND_METRICS",
	"WSBIND_PUSH_", "WSBIND_FANOUT_CONCURRENCY="}

// guestEnv is what the guests see of the environment: the application's
// settings (WSBIND_*, host-only ones excepted) and nothing else. The
// process also holds the function's AWS credentials; the sandbox has no
// use for them.
func (e *Process) guestEnv() []string {
	vars := e.Vars
	if vars == nil {
		vars = os.Environ()
	}
	var out []string
	for _, kv := range vars {
		if strings.HasPrefix(kv, "WSBIND_") && !slices.ContainsFunc(hostOnly, func(p string) bool { return strings.HasPrefix(kv, p) }) {
			out = append(out, kv)
		}
	}
	return out
}

// Function is the function a Lambda process serves: the Handler of its
// events, and what FromEnv opened for it (the guest's pool, engine and
// compilation cache), which Close releases.
type Function struct {
	*lambdahost.Handler
	closers closers
}

// Close releases what FromEnv opened for the function.
func (f *Function) Close(ctx context.Context) error {
	err := f.closers.close(ctx)
	f.closers = nil
	return err
}

// FromEnv builds the Function a Lambda process serves, as the custom
// runtime's bootstrap does at init:
//
//   - _HANDLER (the function's Handler setting) names the function:
//     connect, route, streamfanout, or authorizer or push (host code, no
//     guest);
//   - for streamfanout and push, WSBIND_PUSH_* pace the posts and name
//     the push worker (pushSettings);
//   - WSBIND_BACKEND selects the services: "dynamodb" is the tables named
//     by WSBIND_TABLE_ITEMS, _CONNECTIONS and _SUBSCRIPTIONS (and for
//     route _IDEMPOTENCY), and for streamfanout the management API at
//     WSBIND_MANAGEMENT_ENDPOINT;
//     "memory" is the in-memory store and a Poster that logs and drops
//     pushes (no persistence);
//   - $LAMBDA_TASK_ROOT (default: the executable's directory) holds
//     <function>.cwasm, the guest compiled ahead of time, which wasmtime
//     maps (WSBIND_ENGINE=wasmtime, the default of a bootstrap built
//     with it); and <function>.wasm with wazero's compiled code,
//     <function>.cache/, linked into a writable cache (OpenCache) so
//     that compiling is a cache hit. Each step that fails falls back to
//     the next with one log line: wasmtime, wazero's cache, compiling;
//   - the guest is instantiated now (Pool.Warm), so the first event pays
//     no start-up.
func FromEnv(ctx context.Context, env Process) (*Function, error) {
	begin := time.Now()
	log := env.Log
	if log == nil {
		log = slog.Default()
	}
	name := env.getenv("_HANDLER")
	metrics, err := MetricsFromEnv(env.getenv)
	if err != nil {
		return nil, err
	}
	switch name {
	case lambdahost.NameConnect, lambdahost.NameRoute, lambdahost.NameStreamFanout:
	case lambdahost.NameAuthorizer:
		return authorizerFromEnv(ctx, &env, log, metrics, begin)
	case lambdahost.NamePush:
		return pushFromEnv(ctx, &env, log, metrics)
	default:
		return nil, fmt.Errorf("_HANDLER=%q: want %s, %s, %s, %s or %s", name,
			lambdahost.NameConnect, lambdahost.NameRoute, lambdahost.NameStreamFanout, lambdahost.NameAuthorizer, lambdahost.NamePush)
	}
	svc, err := servicesFromEnv(ctx, &env, name, log)
	if err != nil {
		return nil, err
	}
	var cl closers
	fail := func(err error) (*Function, error) {
		cl.close(ctx)
		return nil, err
	}
	start := time.Now()
	engine := "native"
	var mod host.Module
	if env.Program != nil {
		mod = host.NativeModule(env.Program)
	} else if mod, engine, err = loadGuest(ctx, &env, name, log, &cl); err != nil {
		return fail(err)
	}
	loaded := time.Since(start)
	pool := host.NewPool(mod, 1)
	cl = append(cl, func(ctx context.Context) error { pool.Close(ctx); return nil })
	if err := pool.Warm(ctx); err != nil {
		return fail(fmt.Errorf("%s: %w", name, err))
	}
	// The fan-out refreshes a slow batch's history within the replay
	// overlap route is given (the same setting on both functions).
	hist, err := router.HistoryFromEnv(env.getenv)
	if err != nil {
		return fail(err)
	}
	h, err := lambdahost.New(lambdahost.Config{Function: name, Pool: pool, Services: svc, Refresh: hist.Overlap * 3 / 4,
		Metrics: metrics, InitDuration: time.Since(begin)})
	if err != nil {
		return fail(err)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "wsbind: ready", slog.String("function", name), slog.String("engine", engine),
		slog.Float64("load_ms", msOf(loaded)), slog.Float64("instantiate_ms", msOf(time.Since(start)-loaded)))
	return &Function{Handler: h, closers: cl}, nil
}

// MetricsFromEnv reads the metrics settings: WSBIND_METRICS, "on" (the
// default) or "off", and WSBIND_METRICS_NAMESPACE, the CloudWatch
// namespace (default lambdahost.DefaultMetricsNamespace). It returns the namespace
// for lambdahost.Config.Metrics: "" when off.
func MetricsFromEnv(getenv func(string) string) (string, error) {
	switch v := getenv("WSBIND_METRICS"); v {
	case "", "on":
	case "off":
		return "", nil
	default:
		return "", fmt.Errorf("WSBIND_METRICS=%q: want on (the default: each invocation's log line embeds its CloudWatch metrics) or off", v)
	}
	ns := getenv("WSBIND_METRICS_NAMESPACE")
	if ns == "" {
		return lambdahost.DefaultMetricsNamespace, nil
	}
	if err := checkNamespace(ns); err != nil {
		return "", fmt.Errorf("WSBIND_METRICS_NAMESPACE=%q: %w", ns, err)
	}
	return ns, nil
}

// checkNamespace applies CloudWatch's rules for a custom namespace: 1 to
// 255 of A-Z a-z 0-9 . - _ / # : and space, not only spaces, and not
// under AWS/ (AWS's own). A namespace CloudWatch refuses would lose every
// metric silently: EMF reports its failures only in CloudWatch's own
// metrics.
func checkNamespace(ns string) error {
	if len(ns) > 255 {
		return errors.New("longer than 255 characters")
	}
	if strings.TrimSpace(ns) == "" {
		return errors.New("only spaces")
	}
	if strings.HasPrefix(ns, "AWS/") {
		return errors.New("AWS/ is reserved for AWS's own metrics")
	}
	for _, c := range ns {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-_/#: ", c)
		if !ok {
			return fmt.Errorf("%q is not allowed (A-Z, a-z, 0-9, and . - _ / # : space are)", c)
		}
	}
	return nil
}

// NewLogger is the logger of a Lambda process: JSON lines on w, one
// object per line, which CloudWatch Logs indexes field by field (and
// from which it extracts the embedded metrics). The bootstrap gives it
// standard output, as aws-lambda-go's own slog handler does; standard
// error keeps the one-line reason a bootstrap fails to start.
func NewLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, nil))
}

// authorizerFromEnv builds the $connect authorizer: host code only, no
// guest and no database. A setting it cannot use (a short secret, a JWKS
// URL that is not https, an SSM parameter it cannot read) stops the
// start, rather than reject every token at run time.
//
// The HS256 secret comes from WSBIND_AUTH_HS256_SECRET_PARAM, the SSM
// SecureString the template names, read once here; or, for local runs,
// from WSBIND_AUTH_HS256_SECRET itself. Both set is a mistake: which one
// wins would be a guess.
func authorizerFromEnv(ctx context.Context, env *Process, log *slog.Logger, metrics string, begin time.Time) (*Function, error) {
	cfg := auth.ConfigFromEnv(env.getenv)
	if name := env.getenv(auth.EnvHS256SecretParam); name != "" {
		if len(cfg.HS256Secret) > 0 {
			return nil, fmt.Errorf("%s: %s and %s are both set: give the HS256 secret one way (the SSM parameter's name when deployed, the secret itself locally)",
				lambdahost.NameAuthorizer, auth.EnvHS256Secret, auth.EnvHS256SecretParam)
		}
		secret, err := hs256SecretFromSSM(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", lambdahost.NameAuthorizer, auth.EnvHS256SecretParam, err)
		}
		cfg.HS256Secret = secret
	}
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", lambdahost.NameAuthorizer, err)
	}
	h := lambdahost.NewAuthorizer(auth.NewAuthorizer(v, log), log, metrics, time.Since(begin))
	log.LogAttrs(ctx, slog.LevelInfo, "wsbind: ready", slog.String("function", lambdahost.NameAuthorizer),
		slog.Bool("hs256", len(cfg.HS256Secret) > 0), slog.Bool("hs256_from_ssm", env.getenv(auth.EnvHS256SecretParam) != ""),
		slog.Bool("jwks", cfg.JWKSURL != ""))
	return &Function{Handler: h}, nil
}

// ssmReadTimeout bounds the secret's read, retries included, well inside
// Lambda's 10 s init phase.
const ssmReadTimeout = 5 * time.Second

// hs256SecretFromSSM reads the secret as the function's role, in its
// region, at Parameter Store's endpoint (AWS_ENDPOINT_URL_SSM overrides
// it): all from the process's environment, as the SDK reads it and as
// Lambda sets it.
func hs256SecretFromSSM(ctx context.Context, name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, ssmReadTimeout)
	defer cancel()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("no AWS region (AWS_REGION) to find Parameter Store in")
	}
	c := &auth.SSM{Endpoint: auth.SSMEndpoint(os.Getenv, awsCfg.Region), Region: awsCfg.Region, Credentials: awsCfg.Credentials}
	return auth.HS256SecretFromSSM(ctx, c, name)
}

// msOf is d in milliseconds, to the microsecond: how the logs give
// durations (fields named *_ms).
func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

// closers release what FromEnv opened, last opened first.
type closers []func(context.Context) error

func (c closers) close(ctx context.Context) error {
	var errs []error
	for i := len(c) - 1; i >= 0; i-- {
		errs = append(errs, c[i](ctx))
	}
	return errors.Join(errs...)
}

// servicesFromEnv builds the Services WSBIND_BACKEND selects for the
// function name.
func servicesFromEnv(ctx context.Context, env *Process, name string, log *slog.Logger) (*host.Services, error) {
	switch b := env.getenv("WSBIND_BACKEND"); b {
	case "memory":
		st := memory.New()
		return &host.Services{Store: st, Subscribers: st, Conns: st, Poster: dropPoster{log}, Log: log}, nil
	case "dynamodb":
		return dynamoServices(ctx, env, name, log)
	default:
		return nil, fmt.Errorf("WSBIND_BACKEND=%q: want dynamodb (the tables named by WSBIND_TABLE_*), or memory (in-process, no persistence)", b)
	}
}

// dynamoServices are the AWS services: the DynamoDB tables and, for the
// fan-out, the API Gateway management API. The SDK takes its credentials,
// region and endpoint overrides (AWS_ENDPOINT_URL_DYNAMODB) from the
// process's environment, as Lambda sets it.
func dynamoServices(ctx context.Context, env *Process, name string, log *slog.Logger) (*host.Services, error) {
	tables := dynamo.Tables{
		Items:         env.getenv("WSBIND_TABLE_ITEMS"),
		Connections:   env.getenv("WSBIND_TABLE_CONNECTIONS"),
		Subscriptions: env.getenv("WSBIND_TABLE_SUBSCRIPTIONS"),
		// The route function's alone: a write with an idempotency key
		// fails (500, logged) without it.
		Idempotency: env.getenv("WSBIND_TABLE_IDEMPOTENCY"),
		// The fan-out records the history; route replays it.
		History: env.getenv("WSBIND_TABLE_HISTORY"),
	}
	if tables.Items == "" || tables.Connections == "" || tables.Subscriptions == "" {
		return nil, errors.New("WSBIND_BACKEND=dynamodb needs WSBIND_TABLE_ITEMS, WSBIND_TABLE_CONNECTIONS and WSBIND_TABLE_SUBSCRIPTIONS")
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	hist, err := router.HistoryFromEnv(env.getenv)
	if err != nil {
		return nil, err
	}
	retention := hist.Retention
	st := dynamo.New(dynamo.Config{Client: dynamodb.NewFromConfig(awsCfg), Tables: tables, Retention: retention})
	svc := &host.Services{Store: st, Subscribers: st, Conns: st, Log: log}
	if name == lambdahost.NameStreamFanout || (name == lambdahost.NameRoute && env.getenv("WSBIND_MANAGEMENT_ENDPOINT") != "") {
		endpoint := env.getenv("WSBIND_MANAGEMENT_ENDPOINT")
		if endpoint == "" {
			return nil, errors.New("streamfanout needs WSBIND_MANAGEMENT_ENDPOINT, https://{api-id}.execute-api.{region}.amazonaws.com/{stage}")
		}
		cfg := apigw.Config{Log: log}
		if name == lambdahost.NameStreamFanout {
			// The fan-out forgets a gone connection; a replay leaves that
			// to its $disconnect.
			cfg.OnGone = st.DropConn
		}
		if name == lambdahost.NameStreamFanout {
			p, err := fanoutPoster(endpoint, awsCfg, cfg, env)
			if err != nil {
				return nil, err
			}
			svc.Poster = p
		} else {
			p, err := apigw.New(endpoint, awsCfg, cfg)
			if err != nil {
				return nil, err
			}
			svc.Poster = p
		}
	}
	return svc, nil
}

// apigw's Poster is the fan-out's Poster, flushes its retries at the
// end of a batch, and counts its attempts for the metrics.
var (
	_ host.Poster      = (*apigw.Poster)(nil)
	_ host.Flusher     = (*apigw.Poster)(nil)
	_ host.PushCounter = (*apigw.Poster)(nil)
)

// dropPoster is the memory backend's Poster: there is no API Gateway to
// post to, so it logs each push and drops it.
type dropPoster struct{ log *slog.Logger }

func (p dropPoster) Post(ctx context.Context, frame []byte, connIDs []string) error {
	p.log.LogAttrs(ctx, slog.LevelInfo, "wsbind: push dropped (WSBIND_BACKEND=memory posts nowhere)",
		slog.Int("conns", len(connIDs)), slog.Int("bytes", len(frame)))
	return nil
}

// loadWasm compiles <task root>/<name>.wasm with the shipped compiled
// code, adding what it opens to cl. Whatever the cache holds or lacks, it
// compiles: the cache can slow a start, never fail it.
func loadWasm(ctx context.Context, env *Process, root, name string, log *slog.Logger, cl *closers) (host.Module, error) {
	wasm, err := os.ReadFile(filepath.Join(root, name+".wasm"))
	if err != nil {
		return nil, err
	}
	cacheRoot := env.CacheRoot
	if cacheRoot == "" {
		cacheRoot = filepath.Join(os.TempDir(), "wsbind-cache")
	}
	work := filepath.Join(cacheRoot, name)
	cfg := host.WazeroConfig{GuestEnv: env.guestEnv()}
	cache, err := host.OpenCache(filepath.Join(root, name+".cache"), work, log)
	if err != nil {
		log.LogAttrs(ctx, slog.LevelWarn, "wsbind: no compilation cache", slog.Any("err", err))
	} else {
		*cl = append(*cl, cache.Close)
		cfg.Cache = cache
	}
	mod, out, err := compile(ctx, cfg, wasm, work, cl)
	if err != nil && cfg.Cache != nil {
		// CompileCached has already retried over an emptied cache: what
		// fails is the cache's directory itself (a full /tmp, say). One
		// more try without a cache.
		log.LogAttrs(ctx, slog.LevelWarn, "wsbind: compiling without the compilation cache", slog.Any("err", err))
		cfg.Cache = nil
		mod, out, err = compile(ctx, cfg, wasm, work, cl)
	}
	if err != nil {
		return nil, fmt.Errorf("compile %s.wasm: %w", name, err)
	}
	if !out.Hit {
		attrs := []slog.Attr{slog.String("function", name)}
		if out.Err != nil {
			attrs = append(attrs, slog.Any("cache_err", out.Err))
		}
		log.LogAttrs(ctx, slog.LevelInfo, "compiled "+name+" (no matching compiled code shipped)", attrs...)
	}
	return mod, nil
}

// compile starts an engine and compiles wasm in it.
func compile(ctx context.Context, cfg host.WazeroConfig, wasm []byte, work string, cl *closers) (host.Module, host.CacheOutcome, error) {
	eng, err := host.NewWazero(ctx, cfg)
	if err != nil {
		return nil, host.CacheOutcome{}, err
	}
	mod, out, err := eng.CompileCached(ctx, wasm, work)
	if err != nil {
		eng.Close(ctx)
		return nil, out, err
	}
	*cl = append(*cl, eng.Close)
	return mod, out, nil
}

// CompileCaches compiles each wasm file into dir/<name>.cache, name being
// the file's base name without ".wasm", and in a bootstrap built with
// wasmtime also into dir/<name>.cwasm: the compiled code that `make
// build` ships beside the guests (`bootstrap -compile-cache`). It must run
// on the target's architecture (natively, or under qemu for arm64): the
// code is native code, and wazero's entries are keyed by the CPU's
// features (wasmtime's code is made for the architecture's baseline).
// It goes through host.NewWazero like FromEnv does, since the cache key
// also depends on the runtime's configuration. The files are made
// world-readable, as Lambda requires of a package (wazero writes them
// for its owner only).
func CompileCaches(ctx context.Context, dir string, files []string, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	if len(files) == 0 {
		return errors.New("no wasm files to compile")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".wasm")
		cacheDir := filepath.Join(dir, name+".cache")
		start := time.Now()
		if err := compileCache(ctx, f, cacheDir); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if err := shareTree(cacheDir); err != nil {
			return fmt.Errorf("%s: %w", cacheDir, err)
		}
		log.LogAttrs(ctx, slog.LevelInfo, "compiled "+f, slog.String("cache", cacheDir),
			slog.Int("files", host.CacheFiles(cacheDir)), slog.Duration("took", time.Since(start)))
		start = time.Now()
		cwasm := filepath.Join(dir, name+".cwasm")
		if made, err := precompile(f, cwasm); err != nil {
			return fmt.Errorf("%s: ahead of time: %w", f, err)
		} else if made {
			log.LogAttrs(ctx, slog.LevelInfo, "compiled "+f+" ahead of time", slog.String("cwasm", cwasm),
				slog.Duration("took", time.Since(start)))
		}
	}
	return nil
}

func compileCache(ctx context.Context, file, cacheDir string) error {
	wasm, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
	if err != nil {
		return err
	}
	defer cache.Close(ctx)
	eng, err := host.NewWazero(ctx, host.WazeroConfig{Cache: cache})
	if err != nil {
		return err
	}
	defer eng.Close(ctx)
	if _, _, err := eng.CompileCached(ctx, wasm, cacheDir); err != nil {
		return err
	}
	if host.CacheFiles(cacheDir) == 0 {
		return errors.New("wazero wrote no compiled code")
	}
	return nil
}

// shareTree makes a tree readable by everyone: 0755 directories, 0644
// files.
func shareTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(path, mode)
	})
}
