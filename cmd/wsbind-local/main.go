// Command wsbind-local is the local emulator: the whole system on one
// machine, started by `make run`. It serves the WebSocket API and the
// debugger page at WSBIND_ADDR (default 127.0.0.1:8080), a DynamoDB
// endpoint, and runs the guests in -guests through the host code the
// Lambda bootstrap runs.
//
//	wsbind-local -guests build/amd64          # serve until Ctrl-C
//	wsbind-local -token alice                 # print a token for user alice
//	wsbind-local -token bob -roles admin      # ... whose "groups" are ["admin"]
//	wsbind-local -faults post-throttle=0.1,dynamo-throttle=0.05,seed=1
//
// WSBIND_JWT_SECRET is the HS256 secret tokens are checked with; unset, a
// development secret is used and printed. WSBIND_FAULTS is the default of
// -faults, the faults to inject (local/faults.Parse; README.md, "Fault
// injection"). WSBIND_PAGE_SIZE and other application settings reach the
// guests as on Lambda.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/wsbind/wsbind/local/emulator"
	"github.com/wsbind/wsbind/local/faults"
)

func main() {
	guests := flag.String("guests", "build/"+runtime.GOARCH, "`dir`ectory holding connect.wasm, route.wasm and streamfanout.wasm")
	token := flag.String("token", "", "print a token for `user` (its sub), valid for a day, and exit")
	roles := flag.String("roles", "", "with -token, the token's `groups`, comma-separated (admin,editor): the user's roles")
	faultSpec := flag.String("faults", os.Getenv("WSBIND_FAULTS"), "inject faults: a `spec` of comma-separated key=value, such as post-throttle=0.1,dynamo-throttle=0.05,seed=1\n(keys: "+strings.Join(faults.Keys, ", ")+"); default $WSBIND_FAULTS")
	flag.Parse()

	secret, dev := emulator.SecretFromEnv(os.Getenv)
	if *token != "" {
		t, err := makeToken(secret, *token, *roles, 24*time.Hour)
		exitIf(err)
		fmt.Println(t)
		return
	}
	if *roles != "" {
		exitIf(errors.New("-roles needs -token"))
	}
	fs, err := faults.Parse(*faultSpec)
	if err != nil {
		// A bad setting, as a bad flag is: status 2.
		from := "WSBIND_FAULTS"
		flag.Visit(func(f *flag.Flag) {
			if f.Name == "faults" {
				from = "-faults"
			}
		})
		fmt.Fprintf(os.Stderr, "wsbind-local: %s %q: %v\n", from, *faultSpec, err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := emulator.Config{
		Addr:      envOr("WSBIND_ADDR", "127.0.0.1:8080"),
		JWTSecret: secret,
		GuestDir:  *guests,
		CacheDir:  *guests + "/.cache",
		GuestEnv:  guestEnv(),
		Log:       log,
		Faults:    faults.New(fs),
	}
	if fs.Any() {
		log.Warn("wsbind: injecting faults", "faults", fs.String())
	}
	em, err := emulator.Start(ctx, cfg)
	exitIf(err)
	fmt.Printf("wsbind is running\n")
	fmt.Printf("  WebSocket API     %s\n", em.WebSocketURL())
	fmt.Printf("  debugger          %s\n", em.DebuggerURL())
	fmt.Printf("  DynamoDB endpoint %s\n", em.DynamoDBEndpoint())
	if dev {
		fmt.Printf("  WSBIND_JWT_SECRET is unset: tokens use the development secret %q\n", secret)
	}
	fmt.Printf("  a token for alice: make token USER=alice\n")
	fmt.Printf("Ctrl-C stops it.\n")
	<-ctx.Done()
	fmt.Println("stopping")
	if fs.Any() {
		log.Info("wsbind: faults injected", "counts", em.Faults().Counts().String())
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	exitIf(em.Close(sctx))
}

// makeToken is emulator.Token with roles from a comma-separated list
// (blanks are ignored).
func makeToken(secret []byte, user, roles string, ttl time.Duration) (string, error) {
	var groups []string
	for _, r := range strings.Split(roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			groups = append(groups, r)
		}
	}
	return emulator.Token(secret, user, ttl, groups...)
}

// guestEnv passes the application's settings to the guests, as the
// bootstrap does on Lambda.
func guestEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "WSBIND_") && !strings.HasPrefix(kv, "WSBIND_JWT_") &&
			!strings.HasPrefix(kv, "WSBIND_ADDR=") && !strings.HasPrefix(kv, "WSBIND_FAULTS=") {
			out = append(out, kv)
		}
	}
	return out
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func exitIf(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbind-local:", err)
		os.Exit(1)
	}
}
