package runtimeapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsbind/wsbind/internal/testkit/runtimeapi"
)

// TestRuntimeAPI plays the runtime's side by hand: poll, answer one event,
// fail the next.
func TestRuntimeAPI(t *testing.T) {
	rt, err := runtimeapi.New()
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	base := "http://" + rt.Addr() + "/2018-06-01/runtime/"
	runtime := func(path, answer string) {
		resp, err := http.Get(base + "invocation/next")
		if err != nil {
			t.Error(err)
			return
		}
		payload, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		ms, err := strconv.ParseInt(resp.Header.Get("Lambda-Runtime-Deadline-Ms"), 10, 64)
		if id == "" || err != nil || time.UnixMilli(ms).Before(time.Now()) {
			t.Errorf("next: id %q, deadline %q", id, resp.Header.Get("Lambda-Runtime-Deadline-Ms"))
		}
		resp, err = http.Post(base+"invocation/"+id+"/"+path, "application/json", strings.NewReader(answer+string(payload)))
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("post %s: status %d, want 202", path, resp.StatusCode)
		}
	}
	select {
	case <-rt.Polled():
		t.Fatal("polled before any poll")
	default:
	}
	go runtime("response", "echo ")
	resp, err := rt.Invoke(context.Background(), []byte("one"))
	if err != nil || resp.Error || string(resp.Body) != "echo one" {
		t.Errorf("invoke: got %+v, %v; want the echo", resp, err)
	}
	<-rt.Polled()
	go runtime("error", "failed ")
	resp, err = rt.Invoke(context.Background(), []byte("two"))
	if err != nil || !resp.Error || string(resp.Body) != "failed two" {
		t.Errorf("invoke: got %+v, %v; want the error", resp, err)
	}

	// Nobody polls: the caller's context ends the wait; Close ends the rest.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := rt.Invoke(ctx, []byte("three")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("invoke without a runtime: got %v, want the deadline", err)
	}
	done := make(chan error)
	go func() {
		_, err := rt.Invoke(context.Background(), []byte("four"))
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	rt.Close()
	if err := <-done; !errors.Is(err, runtimeapi.ErrClosed) {
		t.Errorf("invoke across Close: got %v, want ErrClosed", err)
	}
}
