// Package fanout spreads a push to many connections over push workers:
// the streamfanout function's host.Poster (Chunker) splits a Post to more
// than Threshold connections into chunks, each delivered by a synchronous
// invocation of the push worker function (Worker, served by lambdahost as
// "push"), in parallel; the Post returns once every chunk is delivered,
// so the next push of the same change, and the next change, wait for it:
// pushes to one connection keep their order. Connections a worker could
// not reach come back in its response and are retried, those alone.
// Every process that posts paces itself (Limiter, Client) at its share of
// a quota of requests per second, API Gateway's account-level throttle,
// and backs off when API Gateway throttles all the same (RATIONALE: "Why
// does a big fan-out go to push workers invoked synchronously?").
//
//	c, err := fanout.NewChunker(fanout.Config{Local: apigwPoster, Invoker: inv, Workers: 10})
//	svc := &host.Services{Poster: c /* ... */}
package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/wsbind/wsbind/internal/sandbox/host"
)

// Request is the push worker's event: one frame for many connections.
type Request struct {
	// Push marks the event as a push worker's, so that no other event
	// decodes as one.
	Push  bool     `json:"wsbind_push"`
	Frame []byte   `json:"frame"` // base64 in the JSON
	Conns []string `json:"conns"`
}

// Response is the push worker's answer.
type Response struct {
	// Failed are the connections the frame may not have reached (the
	// apigw Poster's *Error): the invoker retries them.
	Failed []string `json:"failed"`
	// Err is the first failure's text, for the log.
	Err string `json:"err,omitempty"`
}

// Defaults of Config.
const (
	// DefaultThreshold: a Post to at most this many connections is made
	// by the local Poster. RATIONALE: "Why chunk from 100 connections?"
	DefaultThreshold = 100
	// DefaultRounds is how many times the connections a chunk did not
	// reach are tried again.
	DefaultRounds = 2
	// MaxPayload is Lambda's limit on a synchronous Invoke's request and
	// response, 6 MB, less 64 KB for the JSON around the ids.
	MaxPayload = 6<<20 - 64<<10
)

// Config configures a Chunker.
type Config struct {
	// Local posts what is not chunked (Threshold connections or fewer,
	// and the retries when they are that few). Required.
	Local host.Poster
	// Invoker runs the push worker. nil means every Post is local.
	Invoker Invoker
	// Workers is the most worker invocations at once, the worker
	// function's reserved concurrency: a Post is split into at most this
	// many chunks. Required with Invoker.
	Workers int
	// Threshold: a Post to more connections than this is chunked, in
	// chunks of at least Threshold/2 connections. 0 means
	// DefaultThreshold.
	Threshold int
	// Rounds is how many times the connections the chunks did not reach
	// are tried again. 0 means DefaultRounds; negative means none.
	Rounds int
	// MaxPayload bounds a chunk's request. 0 means MaxPayload.
	MaxPayload int
	// Log receives a line per chunk that failed. nil means slog.Default().
	Log *slog.Logger
}

// Chunker is a host.Poster that sends a push to many connections through
// push workers. It is safe for concurrent use.
type Chunker struct {
	cfg Config
	log *slog.Logger
}

var (
	_ host.Poster       = (*Chunker)(nil)
	_ host.Flusher      = (*Chunker)(nil)
	_ host.GoneReporter = (*Chunker)(nil)
	_ host.PushCounter  = (*Chunker)(nil)
)

// NewChunker returns a Chunker, or an error naming the setting that is
// wrong.
func NewChunker(cfg Config) (*Chunker, error) {
	if cfg.Local == nil {
		return nil, errors.New("fanout: no local Poster")
	}
	if cfg.Invoker != nil && cfg.Workers <= 0 {
		return nil, fmt.Errorf("fanout: %d push workers: want at least 1", cfg.Workers)
	}
	if cfg.Threshold < 0 {
		return nil, fmt.Errorf("fanout: chunk threshold %d: want 0 (the default, %d) or more", cfg.Threshold, DefaultThreshold)
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = DefaultThreshold
	}
	if cfg.Rounds == 0 {
		cfg.Rounds = DefaultRounds
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = MaxPayload
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	return &Chunker{cfg: cfg, log: log}, nil
}

// Post implements host.Poster: to at most Threshold connections through
// the local Poster; to more, in chunks through the push workers, in
// parallel, returning when every chunk is done. The connections a chunk
// did not reach are tried again, up to Rounds times, and named in an
// *Error if they still fail. An invocation that fails (the worker failed,
// or timed out) leaves its chunk's pushes in doubt: Post returns that
// error, and the change is retried, as with any Poster's error.
func (c *Chunker) Post(ctx context.Context, frame []byte, connIDs []string) error {
	pending := connIDs
	for round := 0; ; round++ {
		if c.cfg.Invoker == nil || len(pending) <= c.cfg.Threshold {
			return c.cfg.Local.Post(ctx, frame, pending)
		}
		failed, why, err := c.fan(ctx, frame, pending)
		if err != nil {
			return err
		}
		if len(failed) == 0 {
			return nil
		}
		if round >= c.cfg.Rounds || ctx.Err() != nil {
			return &Error{Failed: failed, Total: len(connIDs), First: why}
		}
		pending = failed
	}
}

// Flush implements host.Flusher for the local Poster's retries (a worker
// drains its own before it answers).
func (c *Chunker) Flush(ctx context.Context) error {
	if f, ok := c.cfg.Local.(host.Flusher); ok {
		return f.Flush(ctx)
	}
	return nil
}

// Gone implements host.GoneReporter for the connections the local Poster
// found gone. (A worker's finds are not reported back: a replay, the
// reason to ask, is never chunked.)
func (c *Chunker) Gone(id string) bool {
	if g, ok := c.cfg.Local.(host.GoneReporter); ok {
		return g.Gone(id)
	}
	return false
}

// PushCounts implements host.PushCounter with the local Poster's counts:
// the posts this process made. A worker's posts are counted in its own
// invocation's line, so that no post is counted twice.
func (c *Chunker) PushCounts() host.PushCounts {
	if pc, ok := c.cfg.Local.(host.PushCounter); ok {
		return pc.PushCounts()
	}
	return host.PushCounts{}
}

// chunks splits ids into at most Workers chunks by a hash of the
// connection id, each of at least Threshold/2 connections (fewer chunks
// for a smaller push: an invocation costs a few milliseconds), then
// splits any chunk whose request would exceed MaxPayload.
func (c *Chunker) chunks(frame []byte, ids []string) [][]string {
	k := min(c.cfg.Workers, max(1, 2*len(ids)/c.cfg.Threshold))
	out := make([][]string, k)
	for i := range out {
		out[i] = make([]string, 0, len(ids)/k+len(ids)/(4*k)+1)
	}
	for _, id := range ids {
		h := fnv.New32a()
		h.Write([]byte(id))
		j := int(h.Sum32() % uint32(k))
		out[j] = append(out[j], id)
	}
	fixed := len(`{"wsbind_push":true,"frame":"","conns":[]}`) + (len(frame)+2)/3*4
	var split [][]string
	for _, ch := range out {
		size, start := fixed, 0
		for i, id := range ch {
			n := jsonLen(id) + 1
			if size+n > c.cfg.MaxPayload && i > start {
				split = append(split, ch[start:i])
				size, start = fixed, i
			}
			size += n
		}
		if start < len(ch) {
			split = append(split, ch[start:])
		}
	}
	return split
}

// fan delivers frame to ids through the workers, Workers chunks at a
// time, and returns the connections not reached, with the first reason.
func (c *Chunker) fan(ctx context.Context, frame []byte, ids []string) (failed []string, why string, err error) {
	chunks := c.chunks(frame, ids)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, c.cfg.Workers)
	)
	for i, ch := range chunks {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			// Not started: not posted, so simply not reached.
			mu.Lock()
			failed = append(failed, ch...)
			if why == "" {
				why = context.Cause(ctx).Error()
			}
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			resp, err := c.invoke(ctx, frame, ch)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				c.log.LogAttrs(ctx, slog.LevelError, "wsbind: push worker failed", slog.Int("chunk", i),
					slog.Int("conns", len(ch)), slog.Any("err", err))
				errs = append(errs, err)
				return
			}
			if len(resp.Failed) > 0 {
				c.log.LogAttrs(ctx, slog.LevelWarn, "wsbind: push worker did not reach some connections", slog.Int("chunk", i),
					slog.Int("conns", len(ch)), slog.Int("failed", len(resp.Failed)), slog.String("err", resp.Err))
				failed = append(failed, resp.Failed...)
				if why == "" {
					why = resp.Err
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, "", fmt.Errorf("fanout: %d of %d chunks in doubt: %w", len(errs), len(chunks), errors.Join(errs...))
	}
	return failed, why, nil
}

// invoke runs one chunk.
func (c *Chunker) invoke(ctx context.Context, frame []byte, ids []string) (*Response, error) {
	payload, err := json.Marshal(Request{Push: true, Frame: frame, Conns: ids})
	if err != nil {
		return nil, err
	}
	out, err := c.cfg.Invoker.Invoke(ctx, payload)
	if err != nil {
		return nil, err
	}
	var resp Response
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("push worker's response %.100q: %w", out, err)
	}
	return &resp, nil
}

// jsonLen is the length of s as encoding/json writes it, quotes included.
func jsonLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\':
				n += 2
			case b < 0x20 || b == '<' || b == '>' || b == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 6 // \ufffd
		case r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

// Error is Post's error when some connections were still not reached
// after the retries.
type Error struct {
	Failed []string
	Total  int
	First  string // the first reason a worker gave
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fanout: push not delivered to %d of %d connections (", len(e.Failed), e.Total)
	for i, id := range e.Failed[:min(len(e.Failed), 5)] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(id)
	}
	if len(e.Failed) > 5 {
		fmt.Fprintf(&b, " and %d more", len(e.Failed)-5)
	}
	b.WriteString(")")
	if e.First != "" {
		fmt.Fprintf(&b, ": %s", e.First)
	}
	return b.String()
}
