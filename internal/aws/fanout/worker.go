package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wsbind/wsbind/internal/aws/apigw"
)

// WorkerPoster is what a Worker posts with: apigw's Poster.
type WorkerPoster interface {
	Post(ctx context.Context, frame []byte, connIDs []string) error
	Drain(ctx context.Context) error
	Pending() int
}

var _ WorkerPoster = (*apigw.Poster)(nil)

// Worker serves the push worker function: it posts a chunk's frame to
// its connections and answers which it did not reach.
type Worker struct {
	// Poster posts, paced by Limiter (through its HTTP client).
	Poster WorkerPoster
	// Limiter, when not nil, is emptied at each invocation's start
	// (Limiter.Reset).
	Limiter *Limiter
	// Log receives a line per invocation that ended with pushes still in
	// a lane. nil means slog.Default().
	Log *slog.Logger
}

// Serve delivers one Request. Before it answers, it waits for every
// push it moved to a lane (throttled, 5xx) to be delivered or its
// connection closed: the chunk's next push may go to another process,
// which must not overtake this one. It stops a little before ctx's
// deadline so that the answer still gets out, and reports what was not
// attempted by then as failed.
func (w *Worker) Serve(ctx context.Context, payload []byte) (*Response, error) {
	var req Request
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, fmt.Errorf("not a push request: %w", err)
	}
	if !req.Push {
		return nil, errors.New("not a push request: no wsbind_push")
	}
	if w.Limiter != nil {
		w.Limiter.Reset()
	}
	if dl, ok := ctx.Deadline(); ok {
		reserve := min(time.Until(dl)/10, time.Second)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-reserve))
		defer cancel()
	}
	resp := &Response{Failed: []string{}}
	err := w.Poster.Post(ctx, req.Frame, req.Conns)
	var pe *apigw.Error
	switch {
	case err == nil:
	case errors.As(err, &pe):
		for _, f := range pe.Failed {
			resp.Failed = append(resp.Failed, f.ConnID)
		}
		resp.Err = pe.Failed[0].Err.Error()
	default:
		return nil, err
	}
	if err := w.Poster.Drain(ctx); err != nil {
		// Out of time with pushes in lanes: they are delivered when the
		// process next runs, or their connections closed as stuck (the
		// apigw Poster's contract); retrying them here could repeat them.
		log := w.Log
		if log == nil {
			log = slog.Default()
		}
		log.LogAttrs(ctx, slog.LevelWarn, "wsbind: push worker answers with pushes still being retried",
			slog.Int("pending", w.Poster.Pending()), slog.Any("err", err))
	}
	return resp, nil
}
