package apigw_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"

	"github.com/wsbind/wsbind/internal/aws/apigw"
	"github.com/wsbind/wsbind/internal/testkit/apigwtest"
)

// costServerEnv, set in a child test process, makes TestCostServer run a
// management endpoint there for BenchmarkPostCost; its value is "http",
// "h1" (TLS, HTTP/1.1 only) or "h2" (TLS, HTTP/2 offered).
const costServerEnv = "WSBIND_APIGW_COST_SERVER"

// costConns is how many connections one Post of BenchmarkPostCost goes
// to: a change fanned out to a thousand subscribers.
const costConns = 1000

// TestCostServer is not a test: BenchmarkPostCost runs it in a child
// process, so that the endpoint's CPU is not counted as the client's. It
// serves costConns connections and prints its endpoint and certificate,
// then answers "stats" on stdin with the requests served (all, and over
// HTTP/2) until stdin closes.
func TestCostServer(t *testing.T) {
	mode := os.Getenv(costServerEnv)
	if mode == "" {
		t.Skip("the child process of BenchmarkPostCost")
	}
	srv := apigwtest.New(apigwtest.Options{TLS: mode != "http", NoHTTP2: mode == "h1"})
	defer srv.Close()
	srv.Connect(conns("c", costConns)...)
	cert := ""
	if c := srv.Certificate(); c != nil {
		cert = base64.StdEncoding.EncodeToString(c.Raw)
	}
	fmt.Printf("%s %s\n", srv.Endpoint(), cert)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		st := srv.Stats()
		fmt.Printf("%d %d\n", st.Requests, st.HTTP2)
	}
}

// costServer is the child process running TestCostServer.
type costServer struct {
	endpoint string
	roots    *x509.CertPool // nil for plain HTTP
	in       io.WriteCloser
	out      *bufio.Scanner
	cmd      *exec.Cmd
}

func startCostServer(b *testing.B, mode string) *costServer {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCostServer$", "-test.count=1", "-test.benchtime=1x")
	cmd.Env = append(os.Environ(), costServerEnv+"="+mode, "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	s := &costServer{in: in, out: bufio.NewScanner(stdout), cmd: cmd}
	b.Cleanup(func() { in.Close(); cmd.Wait() })
	if !s.out.Scan() {
		b.Fatalf("cost server: no endpoint: %v", s.out.Err())
	}
	f := strings.Fields(s.out.Text())
	s.endpoint = f[0]
	if len(f) > 1 {
		der, err := base64.StdEncoding.DecodeString(f[1])
		if err != nil {
			b.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			b.Fatal(err)
		}
		s.roots = x509.NewCertPool()
		s.roots.AddCert(c)
	}
	return s
}

// stats returns the requests the server answered, all and over HTTP/2.
func (s *costServer) stats(b *testing.B) (requests, http2 int) {
	b.Helper()
	if _, err := io.WriteString(s.in, "stats\n"); err != nil {
		b.Fatal(err)
	}
	if !s.out.Scan() {
		b.Fatalf("cost server: no stats: %v", s.out.Err())
	}
	if _, err := fmt.Sscan(s.out.Text(), &requests, &http2); err != nil {
		b.Fatal(err)
	}
	return requests, http2
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPostCost measures what one PostToConnection costs the client
// in CPU: the Poster (default config, 256 in flight) posts a 200-byte
// frame to costConns connections of a management endpoint (apigwtest)
// running in a child process, so that the process's CPU time (rusage,
// user + system) is the client's alone: over plain HTTP; over TLS with
// HTTP/1.1; over TLS with HTTP/2 offered by ALPN (API Gateway's endpoint
// is HTTPS; whether it speaks HTTP/2 is not documented, and the client
// takes whichever the server offers). Each with posts made by the
// Poster's own signed requests (posts=direct) and by the SDK's
// PostToConnection (posts=sdk, the baseline). Reported per post:
// cpu-µs, allocs, bytes; and posts/s of this process, with the server
// taking its share of the machine's cores. The server must have
// answered every post.
func BenchmarkPostCost(b *testing.B) {
	frame := []byte(`{"stream":"questions","payload":{"action":"update","data":{"id":"q1","text":"` + strings.Repeat("x", 120) + `"}}}`)
	ids := conns("c", costConns)
	for _, bc := range []struct{ mode, posts string }{
		{"http", "sdk"}, {"http", "direct"}, {"h1", "sdk"}, {"h1", "direct"}, {"h2", "sdk"}, {"h2", "direct"},
	} {
		b.Run("proto="+bc.mode+"/posts="+bc.posts, func(b *testing.B) {
			srv := startCostServer(b, bc.mode)
			hc := awshttp.NewBuildableClient()
			if srv.roots != nil {
				hc = hc.WithTransportOptions(func(t *http.Transport) {
					t.TLSClientConfig = &tls.Config{RootCAs: srv.roots, MinVersion: tls.VersionTLS12}
				})
			}
			acfg := awsConfig()
			acfg.HTTPClient = hc
			p, err := apigw.New(srv.endpoint, acfg, apigw.Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			if bc.posts == "sdk" {
				apigw.UseSDKPosts(p)
			}
			ctx := context.Background()
			post := func() {
				if err := p.Post(ctx, frame, ids); err != nil {
					b.Fatal(err)
				}
			}
			post() // warm: the connection pool
			req0, _ := srv.stats(b)
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for b.Loop() {
				post()
			}
			b.StopTimer()
			cpu := cpuTime(b) - cpu0
			runtime.ReadMemStats(&ms1)
			posts := float64(b.N * costConns)
			b.ReportMetric(float64(cpu)/float64(time.Microsecond)/posts, "cpu-µs/post")
			b.ReportMetric(posts/b.Elapsed().Seconds(), "posts/s")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/posts, "allocs/post")
			b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/posts, "B/post")
			b.ReportMetric(0, "ns/op")
			req1, h2 := srv.stats(b)
			if got := req1 - req0; got != b.N*costConns {
				b.Fatalf("server answered %d posts, want %d", got, b.N*costConns)
			}
			if want := bc.mode == "h2"; (h2 == req1) != want {
				b.Fatalf("%d of %d requests over HTTP/2, want all: %v", h2, req1, want)
			}
		})
	}
}
