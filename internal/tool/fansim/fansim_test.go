package fansim_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wsbind/wsbind/internal/tool/fansim"
)

// TestMain serves as the endpoint process when the simulator starts the
// test binary as one.
func TestMain(m *testing.M) {
	if os.Getenv("FANSIM_ENDPOINT") == "1" {
		if err := fansim.ServeMain(os.Args[1:], os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func spawn(args []string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "FANSIM_ENDPOINT=1")
	return cmd
}

// Under 1% of posts failing with 500, every subscriber gets the push
// exactly once, no second sees more requests than the quota, and none is
// throttled; the delivery takes no less than the limit N/quota (the
// quota is what bounds it) and, at this size, not more than twice it.
func TestSim_ExactlyOnceUnderQuota(t *testing.T) {
	cfg := fansim.Config{
		Sizes: []int{3000}, Quota: 2000, Workers: 4, Parents: 1, MemoryMB: 512,
		Endpoint: fansim.ServerOptions{Median: 5 * time.Millisecond, P99: 20 * time.Millisecond, Fail: 0.01, Seed: 7},
		Dilate:   1, Spawn: spawn,
	}
	rs, err := fansim.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fansim.Table(&b, cfg, rs)
	t.Log("\n" + b.String())
	r := rs[0]
	if r.Err != "" {
		t.Fatal(r.Err)
	}
	st := r.Server
	if st.Duplicates != 0 || st.Missing != 0 {
		t.Errorf("%d duplicates, %d missing (%s)", st.Duplicates, st.Missing, st.FirstBad)
	}
	if st.Failed == 0 {
		t.Errorf("no 500 injected among %d requests: the failure path was not exercised", st.Requests)
	}
	if st.MaxSent > 2000 || st.Throttled != 0 {
		t.Errorf("%d requests sent in one second, %d throttled: quota 2000", st.MaxSent, st.Throttled)
	}
	if st.Delivered != 3000 || st.Requests != st.Delivered+st.Failed {
		t.Errorf("requests %d, delivered %d, failed %d: want 3000 delivered, a retry per failure", st.Requests, st.Delivered, st.Failed)
	}
	if r.Ratio() < 1 || r.Ratio() > 3 {
		t.Errorf("delivery %v against the limit %v: ratio %.2f, want in [1, 3]", r.Delivery, r.Limit, r.Ratio())
	}
	if r.Invocations < 4 {
		t.Errorf("%d push worker invocations, want at least one per worker", r.Invocations)
	}
}

// With a quota far below what the fan-out can post, throttling by the
// endpoint is avoided by pacing alone: the limiters' static shares keep
// every second under it.
func TestSim_PacedNotThrottled(t *testing.T) {
	cfg := fansim.Config{
		Sizes: []int{1500}, Quota: 500, Workers: 3, Parents: 1, MemoryMB: 512,
		Endpoint: fansim.ServerOptions{Median: 2 * time.Millisecond, P99: 10 * time.Millisecond, Seed: 3},
		Dilate:   1, Spawn: spawn,
	}
	rs, err := fansim.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rs[0]
	if r.Err != "" || r.Server.Throttled != 0 || r.Server.MaxSent > 500 || r.Server.Missing != 0 || r.Server.Duplicates != 0 {
		t.Fatalf("err %q, %d throttled, max %d/s sent (quota 500), %d missing, %d duplicates", r.Err, r.Server.Throttled, r.Server.MaxSent, r.Server.Missing, r.Server.Duplicates)
	}
}

func TestParseSizes(t *testing.T) {
	got, err := fansim.ParseSizes("1000, 10k,1M")
	if err != nil || fmt.Sprint(got) != "[1000 10000 1000000]" {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "x", "-5", "0", "1.5k"} {
		if _, err := fansim.ParseSizes(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
