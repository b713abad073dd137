// Package emulator assembles the local emulator: the whole system in one
// process. A WebSocket gateway with API Gateway's semantics and its
// management API, a DynamoDB endpoint with a change stream, and the
// event source mapping that feeds the stream to the fan-out, all on
// 127.0.0.1, around the very guests and host code that run on Lambda,
// talking to those endpoints with the real aws-sdk-go-v2 clients.
package emulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wsbind/wsbind/infra"
	"github.com/wsbind/wsbind/internal/aws/apigw"
	"github.com/wsbind/wsbind/internal/aws/dynamo"
	"github.com/wsbind/wsbind/internal/aws/fanout"
	"github.com/wsbind/wsbind/internal/aws/lambdahost"
	"github.com/wsbind/wsbind/internal/core/router"
	"github.com/wsbind/wsbind/internal/emulated/dynamodblocal"
	"github.com/wsbind/wsbind/internal/emulated/gateway"
	"github.com/wsbind/wsbind/internal/emulated/streams"
	"github.com/wsbind/wsbind/internal/emulated/web"
	"github.com/wsbind/wsbind/internal/sandbox/host"
	"github.com/wsbind/wsbind/local/faults"
)

// Tables are the emulator's table names, as a stack with
// TableNamePrefix "wsbind-local" would name them. The tables themselves
// are created from infra/template.yaml.
var Tables = dynamo.Tables{
	Items:         "wsbind-local-items",
	Connections:   "wsbind-local-connections",
	Subscriptions: "wsbind-local-subscriptions",
	Idempotency:   "wsbind-local-idempotency",
	History:       "wsbind-local-history",
}

// Config configures the emulator. GuestDir and JWTSecret are required.
type Config struct {
	// Addr is the gateway's listen address (WebSocket API, management
	// API, debugger page). "" means 127.0.0.1:8080; port 0 picks one.
	Addr string
	// DynamoDBAddr is the DynamoDB endpoint's listen address. "" means
	// 127.0.0.1 on a free port.
	DynamoDBAddr string
	// JWTSecret is the HS256 secret the authorizer checks tokens with.
	JWTSecret []byte
	// GuestDir holds connect.wasm, route.wasm and streamfanout.wasm.
	GuestDir string
	// CacheDir holds wazero's compiled code, so a restart loads instead
	// of compiling. "" means compile every start.
	CacheDir string
	// GuestEnv is the guests' environment (WSBIND_PAGE_SIZE, ...).
	GuestEnv []string
	// Instances bounds each function's calls in flight (and so its guest
	// instances). 0 means 8.
	Instances int
	// IdleTimeout and MaxLifetime are the gateway's connection limits.
	// 0 means API Gateway's: 10 minutes and 2 hours.
	IdleTimeout, MaxLifetime time.Duration
	// Log receives the emulator's logs, its functions' included: one
	// line per invocation, with its embedded metrics, as on Lambda. nil
	// means slog.Default(); NewLogger makes the JSON logger the
	// functions write on Lambda.
	Log *slog.Logger
	// Metrics is the CloudWatch namespace of the metrics embedded in
	// the functions' log lines, as WSBIND_METRICS_NAMESPACE sets it on
	// Lambda. "" means lambdahost.DefaultMetricsNamespace; "off" means
	// none (WSBIND_METRICS=off).
	Metrics string
	// Template is the SAM template whose tables the emulator creates,
	// and whose event source mapping of the items table's stream
	// (BatchSize, MaximumBatchingWindowInSeconds, MaximumRetryAttempts,
	// BisectBatchOnFunctionError) the emulator's mapping follows. nil
	// means infra/template.yaml as built in.
	Template []byte
	// DataDir, when set, keeps the items, idempotency and history
	// tables in this directory across restarts: what a run wrote is
	// there at the next start with the same DataDir, even after a crash
	// (every write reaches the directory's log before it is answered).
	// The connections and subscriptions tables start empty at every run:
	// the connections they hold died with the process that held them.
	// "" keeps everything in memory only.
	DataDir string
	// Faults injects faults (local/faults) into management-API posts,
	// DynamoDB requests, fan-out invocations and new connections. nil
	// means none: Start then makes an empty one, so that Faults is never
	// nil and a test can switch faults on while the emulator runs.
	Faults *faults.Faults
}

// NewLogger is a logger printing on w what the functions print on
// Lambda: JSON lines. With text, it prints slog's key=value text instead,
// easier on the eye; Metrics "off" then leaves the metrics out too.
func NewLogger(w io.Writer, text bool) *slog.Logger {
	if text {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

// Emulator is a running emulator.
type Emulator struct {
	gwURL, dynamoURL string
	gw               *gateway.Gateway
	gwSrv, dynSrv    *http.Server
	dyn              *dynamodblocal.Server
	mapping          *streams.Mapping
	faults           *faults.Faults
	fns              *functions
	stop             context.CancelFunc
	done             chan struct{}
}

// WebSocketURL is the URL clients connect to: ws://ADDR/.
func (e *Emulator) WebSocketURL() string { return "ws" + e.gwURL[len("http"):] + "/" }

// DebuggerURL is the debugger page's URL: http://ADDR/.
func (e *Emulator) DebuggerURL() string { return e.gwURL + "/" }

// DynamoDBEndpoint is the DynamoDB endpoint's URL, for
// AWS_ENDPOINT_URL_DYNAMODB.
func (e *Emulator) DynamoDBEndpoint() string { return e.dynamoURL }

// ManagementEndpoint is the management API's URL, for
// WSBIND_MANAGEMENT_ENDPOINT.
func (e *Emulator) ManagementEndpoint() string { return e.gw.ManagementEndpoint(e.gwURL) }

// Faults returns the faults in force: Config.Faults, or the empty one
// Start made. Set switches them while the emulator runs.
func (e *Emulator) Faults() *faults.Faults { return e.faults }

// AWSConfig is the configuration of the emulator's SDK clients: a fixed
// region and static credentials, nothing from the environment, so a
// developer's AWS settings can never point the emulator at AWS.
func AWSConfig() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}
}

// DynamoDBClient is an SDK client of the emulator's DynamoDB endpoint.
func DynamoDBClient(endpoint string) *dynamodb.Client {
	return dynamodb.NewFromConfig(AWSConfig(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// Start starts the emulator; it runs until Close.
func Start(ctx context.Context, cfg Config) (*Emulator, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.DynamoDBAddr == "" {
		cfg.DynamoDBAddr = "127.0.0.1:0"
	}
	if cfg.Instances <= 0 {
		cfg.Instances = 8
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	if cfg.Faults == nil {
		cfg.Faults = faults.New(faults.Settings{})
	}
	if cfg.Template == nil {
		cfg.Template = infra.TemplateYAML
	}
	tmpl, err := infra.Parse(cfg.Template)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	// em is returned only when everything started; on any error, what
	// did start is stopped again, newest first, and the error returned.
	em := &Emulator{done: make(chan struct{}), faults: cfg.Faults}
	var cleanup []func()
	ok := false
	defer func() {
		if !ok {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()

	// DynamoDB, and the tables the template defines.
	dyn := dynamodblocal.New(dynamodblocal.Config{})
	dynLn, err := net.Listen("tcp", cfg.DynamoDBAddr)
	if err != nil {
		return nil, fmt.Errorf("DynamoDB endpoint: %w", err)
	}
	em.dyn = dyn
	em.dynSrv = &http.Server{Handler: em.faults.DynamoDB(dyn), ReadHeaderTimeout: 10 * time.Second}
	go em.dynSrv.Serve(dynLn)
	// Close the listener too: Serve may not have taken it yet.
	cleanup = append(cleanup, func() { em.dynSrv.Close(); dynLn.Close() })
	em.dynamoURL = "http://" + dynLn.Addr().String()
	client := DynamoDBClient(em.dynamoURL)
	if err := createTables(ctx, client, tmpl); err != nil {
		return nil, err
	}
	if cfg.DataDir != "" {
		r, err := dyn.Open(cfg.DataDir, Tables.Items, Tables.Idempotency, Tables.History)
		if err != nil {
			return nil, err
		}
		cleanup = append(cleanup, func() { dyn.Close() })
		log.Info("wsbind: data restored", "dir", cfg.DataDir, "items", r.Items, "log_records", r.Frames)
		if r.Dropped > 0 {
			log.Warn("wsbind: the data log ends in bytes that are not a whole record (a write cut short by a crash, or damage): everything before them is restored, they are dropped",
				"dir", cfg.DataDir, "offset", r.DroppedAt, "dropped_bytes", r.Dropped, "log_kept_as", r.KeptAs)
		}
		if r.Unknown > 0 {
			log.Warn("wsbind: the data directory holds changes to tables the template no longer has: skipped", "dir", cfg.DataDir, "changes", r.Unknown)
		}
	}

	// The gateway's address first: the Poster needs its management
	// endpoint before the functions exist.
	gwLn, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("WSBIND_ADDR=%s: %w", cfg.Addr, err)
	}
	cleanup = append(cleanup, func() { gwLn.Close() })
	em.gwURL = "http://" + gwLn.Addr().String()

	// The history keeps changes as long as the guests (which decide what
	// is a gap) are told: the replay settings among GuestEnv.
	hist, err := router.HistoryFromEnv(func(k string) string {
		for _, kv := range cfg.GuestEnv {
			if v, ok := strings.CutPrefix(kv, k+"="); ok {
				return v
			}
		}
		return ""
	})
	if err != nil {
		return nil, err
	}
	retention := hist.Retention
	st := dynamo.New(dynamo.Config{Client: client, Tables: Tables, Retention: retention})
	svc := &host.Services{Store: st, Subscribers: st, Conns: st, Log: log}
	// The gateway is built below; its management endpoint is known now.
	mgmt := em.gwURL + "/" + gateway.DefaultStage
	poster, err := apigw.New(mgmt, AWSConfig(), apigw.Config{OnGone: st.DropConn, Log: log})
	if err != nil {
		return nil, err
	}
	// A push to many connections goes through push workers, as on AWS
	// with WSBIND_PUSH_WORKER_FUNCTION: Instances of them, each with a
	// Poster of its own, invoked in-process (internal/aws/fanout).
	var workers []lambda.Handler
	for range cfg.Instances {
		wp, err := apigw.New(mgmt, AWSConfig(), apigw.Config{OnGone: st.DropConn, Log: log})
		if err != nil {
			return nil, err
		}
		cleanup = append(cleanup, wp.Close)
		workers = append(workers, lambdahost.NewPush(&fanout.Worker{Poster: wp, Log: log}, log, metricsOf(cfg)))
	}
	chunker, err := fanout.NewChunker(fanout.Config{Local: poster, Invoker: fanout.NewLocalInvoker(15*time.Minute, workers...),
		Workers: cfg.Instances, Log: log})
	if err != nil {
		return nil, err
	}
	svc.Poster = chunker

	em.fns, err = loadFunctions(ctx, &cfg, svc, hist.Overlap*3/4, log)
	if err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { em.fns.close(context.Background()) })

	em.gw = gateway.New(gateway.Config{
		Authorizer:  em.fns.authorizer,
		Connect:     em.fns.connect,
		Route:       em.fns.route,
		Stage:       gateway.DefaultStage,
		IdleTimeout: cfg.IdleTimeout,
		MaxLifetime: cfg.MaxLifetime,
		Fallback:    web.Handler(em.fns.bindings),
		Stuck:       em.faults.Stuck,
		Log:         log,
	})
	// Faults reach management-API posts only; the WebSocket API and
	// the page are served as they are.
	em.gwSrv = &http.Server{Handler: em.faults.Management(em.gw), ReadHeaderTimeout: 10 * time.Second}
	go em.gwSrv.Serve(gwLn)

	stream, ok := dyn.Stream(Tables.Items)
	if !ok {
		return nil, errors.New("the items table has no stream")
	}
	mctx, stop := context.WithCancel(context.Background())
	em.stop = stop
	mcfg := mappingConfig(tmpl)
	mcfg.Log = log
	em.mapping = streams.New(stream, em.faults.Fanout(em.fns.fanout), mcfg)
	go func() {
		defer close(em.done)
		em.mapping.Run(mctx)
	}()
	ok = true
	return em, nil
}

// Close stops the emulator: connections get their $disconnect, the
// stream mapping finishes its batch, the servers stop.
func (e *Emulator) Close(ctx context.Context) error {
	errs := []error{e.gw.Shutdown(ctx), e.gwSrv.Shutdown(ctx)}
	e.stop()
	select {
	case <-e.done:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	errs = append(errs, e.dynSrv.Shutdown(ctx), e.dyn.Close(), e.fns.close(ctx))
	return errors.Join(errs...)
}

// createTables creates the tables the template declares, named as
// Tables names them.
func createTables(ctx context.Context, client *dynamodb.Client, tmpl infra.Template) error {
	ins, err := infra.TableInputs(tmpl, map[string]string{
		"ItemsTable":         Tables.Items,
		"ConnectionsTable":   Tables.Connections,
		"SubscriptionsTable": Tables.Subscriptions,
		"IdempotencyTable":   Tables.Idempotency,
		"HistoryTable":       Tables.History,
	})
	if err != nil {
		return fmt.Errorf("template: %w", err)
	}
	for _, name := range []string{Tables.Items, Tables.Connections, Tables.Subscriptions, Tables.Idempotency, Tables.History} {
		if !slices.ContainsFunc(ins, func(in *dynamodb.CreateTableInput) bool { return aws.ToString(in.TableName) == name }) {
			return fmt.Errorf("template: no table for %s (ItemsTable, ConnectionsTable, SubscriptionsTable, IdempotencyTable and HistoryTable are required)", name)
		}
	}
	if err := dynamo.CreateTablesFrom(ctx, client, ins); err != nil {
		return fmt.Errorf("create tables: %w", err)
	}
	return nil
}
