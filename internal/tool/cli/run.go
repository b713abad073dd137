package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/wsbind/wsbind/internal/aws/lambdainit"
	"github.com/wsbind/wsbind/internal/tool/lambdapkg"
	"github.com/wsbind/wsbind/local/emulator"
	"github.com/wsbind/wsbind/local/faults"
)

// runCmd builds the module's guests and serves them in the emulator
// until ctx ends (Ctrl-C).
func runCmd(ctx context.Context, env Env, args []string) error {
	fs := flags("run")
	addr := fs.String("addr", or(env.Getenv("WSBIND_ADDR"), "127.0.0.1:8080"), "listen `address` of the WebSocket API, management API and debugger page; default $WSBIND_ADDR or 127.0.0.1:8080")
	guests := fs.String("guests", "", "serve the guests already built in `dir` (connect.wasm, route.wasm, streamfanout.wasm) instead of building this module's")
	tmplFile := fs.String("template", "", "the SAM template `file` whose tables and stream mapping the emulator follows; default template.yaml at the module's root, else wsbind's own")
	faultSpec := fs.String("faults", env.Getenv("WSBIND_FAULTS"), "inject faults: a `spec` of comma-separated key=value, such as post-throttle=0.1,dynamo-throttle=0.05,seed=1 (keys: "+strings.Join(faults.Keys, ", ")+"); default $WSBIND_FAULTS")
	idle := fs.Duration("idle", 0, "close a connection idle this long (API Gateway: 10m); 0 means API Gateway's")
	lifetime := fs.Duration("lifetime", 0, "close every connection after this long (API Gateway: 2h); 0 means API Gateway's")
	logFormat := fs.String("log", or(env.Getenv("WSBIND_LOG"), "json"), "print logs on standard error as `format` json (what the functions print on Lambda: one JSON object a line, with its embedded CloudWatch metrics) or text (key=value, without the metrics); default $WSBIND_LOG or json")
	data := fs.String("data", env.Getenv("WSBIND_DATA"), "keep the items (with the idempotency records and the history) in `dir` across restarts, crashes included; default $WSBIND_DATA, or nothing kept")
	instances := fs.Int("instances", 8, "run at most `n` calls of each function at once, each in a guest instance of its own (Lambda: the function's concurrency)")
	pos, err := parse(env, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *idle < 0 || *lifetime < 0 {
		return usagef("-idle and -lifetime are durations of 0 or more")
	}
	if *logFormat != "json" && *logFormat != "text" {
		from := "WSBIND_LOG"
		if set(fs, "log") {
			from = "-log"
		}
		return usagef("%s %q: want json or text", from, *logFormat)
	}
	if *instances < 1 {
		return usagef("-instances %d: want 1 or more", *instances)
	}
	spec, err := faults.Parse(*faultSpec)
	if err != nil {
		from := "WSBIND_FAULTS"
		if set(fs, "faults") {
			from = "-faults"
		}
		return usagef("%s %q: %v", from, *faultSpec, err)
	}
	metrics, err := metricsSetting(*logFormat, env.Getenv)
	if err != nil {
		return err
	}
	secret, dev := emulator.SecretFromEnv(env.Getenv)

	log := emulator.NewLogger(env.Stderr, *logFormat == "text")
	var tmpl []byte
	dir := *guests
	if dir == "" || *tmplFile == "" {
		root, err := moduleDir(ctx, env.Dir)
		if err != nil {
			return err
		}
		if *tmplFile == "" {
			if b, err := os.ReadFile(filepath.Join(root, "template.yaml")); err == nil {
				tmpl = b
			}
		}
		if dir == "" {
			dir = filepath.Join(root, "build", "local")
			fmt.Fprintf(env.Stdout, "building the guests of %s into %s\n", root, dir)
			if err := lambdapkg.Guests(ctx, lambdapkg.Options{Dir: root, Out: dir}); err != nil {
				return err
			}
		}
	}
	if *tmplFile != "" {
		if tmpl, err = os.ReadFile(*tmplFile); err != nil {
			return usagef("-template: %v", err)
		}
	}
	cfg := emulator.Config{
		Addr:        *addr,
		JWTSecret:   secret,
		GuestDir:    dir,
		CacheDir:    filepath.Join(dir, ".cache"),
		GuestEnv:    guestEnv(),
		Log:         log,
		Metrics:     metrics,
		Template:    tmpl,
		IdleTimeout: *idle,
		MaxLifetime: *lifetime,
		Instances:   *instances,
		DataDir:     *data,
		Faults:      faults.New(spec),
	}
	if spec.Any() {
		log.Warn("wsbind: injecting faults", "faults", spec.String())
	}
	em, err := emulator.Start(ctx, cfg)
	if err != nil {
		return err
	}
	w := env.Stdout
	fmt.Fprintf(w, "wsbind is running\n")
	fmt.Fprintf(w, "  WebSocket API     %s\n", em.WebSocketURL())
	fmt.Fprintf(w, "  debugger          %s\n", em.DebuggerURL())
	fmt.Fprintf(w, "  DynamoDB endpoint %s\n", em.DynamoDBEndpoint())
	if dev {
		fmt.Fprintf(w, "  WSBIND_JWT_SECRET is unset: tokens use the development secret %q\n", secret)
	}
	fmt.Fprintf(w, "  a token for alice: make token USER=alice\n")
	fmt.Fprintf(w, "Ctrl-C stops it.\n")
	<-ctx.Done()
	fmt.Fprintln(w, "stopping")
	if spec.Any() {
		log.Info("wsbind: faults injected", "counts", em.Faults().Counts().String())
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return em.Close(sctx)
}

// metricsSetting is emulator.Config.Metrics: WSBIND_METRICS and
// WSBIND_METRICS_NAMESPACE, as the bootstrap reads them, and none with
// text logs (the embedded metrics are for CloudWatch, which reads JSON
// lines only).
func metricsSetting(format string, getenv func(string) string) (string, error) {
	ns, err := lambdainit.MetricsFromEnv(getenv)
	if err != nil {
		return "", usageError{err}
	}
	if ns == "" || format == "text" {
		return "off", nil
	}
	return ns, nil
}

// moduleDir returns the root of the Go module dir is in.
func moduleDir(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "env", "GOMOD")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return "", fmt.Errorf("go env GOMOD: %s", strings.TrimSpace(stderr.String()))
		}
		return "", fmt.Errorf("the go command is needed to build the guests: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		where := dir
		if where == "" {
			where, _ = os.Getwd()
		}
		return "", fmt.Errorf("%s is not in a Go module: run this in an application's directory (wsbind init DIR makes one)", where)
	}
	return filepath.Dir(mod), nil
}

// guestEnv passes the application's settings to the guests, as the
// bootstrap does on Lambda: WSBIND_* but the emulator's own.
func guestEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "WSBIND_") && !strings.HasPrefix(kv, "WSBIND_JWT_") &&
			!strings.HasPrefix(kv, "WSBIND_ADDR=") && !strings.HasPrefix(kv, "WSBIND_FAULTS=") && !strings.HasPrefix(kv, "WSBIND_LOG=") &&
			!strings.HasPrefix(kv, "WSBIND_METRICS") && !strings.HasPrefix(kv, "WSBIND_DATA=") {
			out = append(out, kv)
		}
	}
	return out
}

// set reports whether the flag was given on the command line.
func set(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
