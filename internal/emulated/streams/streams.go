// Package streams is the emulator's event source mapping: it reads a
// table's change stream and invokes a function with the records in
// ordered batches, as Lambda does for a DynamoDB stream (batch size,
// batching window, retries, partial batch failures, bisection).
//
//	st, _ := db.Stream("items") // a *dynamodblocal.Stream
//	m := streams.New(st, fanout, streams.Config{}) // fanout: a lambda.Handler
//	err := m.Run(ctx)
//
// One batch is in flight at a time, so the records of an item reach the
// function in the order they were written.
package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wsbind/wsbind/internal/emulated/dynamodblocal"
)

// Source is a change stream: *dynamodblocal.Stream.
type Source interface {
	// Read returns up to limit records after position after, waiting for
	// at least one.
	Read(ctx context.Context, after uint64, limit int) ([]dynamodblocal.Record, error)
	// ARN names the stream in log lines.
	ARN() string
}

var _ Source = (*dynamodblocal.Stream)(nil)

// Config configures a mapping. The zero value works.
type Config struct {
	// BatchSize is the most records one invocation gets. Default 100,
	// Lambda's; at most 10,000.
	BatchSize int
	// MaximumBatchingWindow is how long to gather records for a batch
	// once the first one is there. Default 0, Lambda's and the
	// template's: invoke with what is there. Records that arrive while a
	// batch is in flight still make one batch.
	MaximumBatchingWindow time.Duration
	// MaximumRetryAttempts is how often a failed batch is retried before
	// its records are given up (logged, and passed to OnFailure). Default
	// 10, the deployment template's; negative means forever, Lambda's own
	// default.
	MaximumRetryAttempts int
	// BisectBatchOnFunctionError splits a batch whose invocation failed
	// in two and retries the halves apart, so a poison record ends up
	// alone. Default off, Lambda's; the template turns it on.
	BisectBatchOnFunctionError bool
	// RetryDelay is the wait before the first retry, doubled for each
	// next one up to 5 s. Default 100 ms.
	RetryDelay time.Duration
	// Timeout bounds one invocation, as a function's timeout does: the
	// invocation's context has this deadline. Default 60 s.
	Timeout time.Duration
	// OnFailure receives the records given up after the last retry, as an
	// on-failure destination does. nil means they are only logged.
	OnFailure func(ctx context.Context, f Failure)
	// Log is where the mapping logs. nil means slog.Default().
	Log *slog.Logger
}

// Failure is a batch given up after its retries.
type Failure struct {
	// Records are the records not delivered, oldest first.
	Records []dynamodblocal.Record
	// Attempts is how many invocations were made with them.
	Attempts int
	// Err is the last invocation's error, or the partial failure.
	Err error
}

// maxPayload is Lambda's limit of a synchronous invocation's payload.
const maxPayload = 6 << 20

func (c *Config) defaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	c.BatchSize = min(c.BatchSize, 10000)
	if c.MaximumRetryAttempts == 0 {
		c.MaximumRetryAttempts = 10
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = 100 * time.Millisecond
	}
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Mapping is an event source mapping: one stream, one function.
type Mapping struct {
	src Source
	h   lambda.Handler
	cfg Config
}

// New returns a mapping of src to h. The config is copied.
func New(src Source, h lambda.Handler, cfg Config) *Mapping {
	cfg.defaults()
	return &Mapping{src: src, h: h, cfg: cfg}
}

// Run feeds the stream to the function until ctx ends or the stream's
// table is deleted and its records are done; then it returns nil. It
// starts at the stream's oldest record (TRIM_HORIZON). When ctx ends
// during an invocation, that invocation runs to its end (its own Timeout
// bounds it) and nothing is retried or invoked after it. Run returns an
// error only for a stream that fails to read. Run it once.
func (m *Mapping) Run(ctx context.Context) error {
	src := m.src
	var after uint64
	for {
		batch, err := m.gather(ctx, after)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, dynamodblocal.ErrStreamClosed):
			return nil
		case err != nil:
			return fmt.Errorf("streams: %s: %w", src.ARN(), err)
		}
		m.deliver(ctx, batch, 0)
		if ctx.Err() != nil {
			// The batch may not be done; nothing keeps the position across
			// runs, so there is nothing to save either.
			return nil
		}
		after = batch[len(batch)-1].Seq
	}
}

// gather reads the next batch: the first record, then more for up to the
// batching window, at most BatchSize records and 6 MB of payload.
func (m *Mapping) gather(ctx context.Context, after uint64) ([]dynamodblocal.Record, error) {
	batch, err := m.src.Read(ctx, after, m.cfg.BatchSize)
	if err != nil {
		return nil, err
	}
	if m.cfg.MaximumBatchingWindow > 0 && len(batch) < m.cfg.BatchSize {
		wctx, cancel := context.WithTimeout(ctx, m.cfg.MaximumBatchingWindow)
		for len(batch) < m.cfg.BatchSize {
			more, err := m.src.Read(wctx, batch[len(batch)-1].Seq, m.cfg.BatchSize-len(batch))
			if err != nil {
				break // the window closed, or the stream did: send what there is
			}
			batch = append(batch, more...)
		}
		cancel()
	}
	size := 0
	for i, r := range batch {
		b, err := json.Marshal(r.Event)
		if err != nil {
			return nil, err
		}
		if size += len(b) + 1; size > maxPayload && i > 0 {
			return batch[:i], nil
		}
	}
	return batch, nil
}

// deliver invokes the function with batch until all of it is done or
// given up. attempts counts the invocations already made with these
// records (a bisected half inherits its parent's).
func (m *Mapping) deliver(ctx context.Context, batch []dynamodblocal.Record, attempts int) {
	delay := m.cfg.RetryDelay
	for len(batch) > 0 {
		failed, err := m.invoke(ctx, batch)
		if ctx.Err() != nil {
			return
		}
		if err == nil && failed == len(batch) {
			return
		}
		attempts++
		if err != nil && m.cfg.BisectBatchOnFunctionError && len(batch) > 1 {
			m.cfg.Log.LogAttrs(ctx, slog.LevelWarn, "streams: invocation failed, bisecting the batch",
				slog.String("stream", m.src.ARN()), slog.Int("records", len(batch)), slog.Any("err", err))
			half := len(batch) / 2
			m.deliver(ctx, batch[:half], attempts)
			m.deliver(ctx, batch[half:], attempts)
			return
		}
		// Records before the first reported failure are done.
		batch = batch[failed:]
		if err == nil {
			err = fmt.Errorf("the function reported record %s failed", batch[0].Event.Change.SequenceNumber)
		}
		if m.cfg.MaximumRetryAttempts >= 0 && attempts > m.cfg.MaximumRetryAttempts {
			m.giveUp(ctx, Failure{Records: batch, Attempts: attempts, Err: err})
			return
		}
		m.cfg.Log.LogAttrs(ctx, slog.LevelWarn, "streams: retrying",
			slog.String("stream", m.src.ARN()), slog.String("from", batch[0].Event.Change.SequenceNumber),
			slog.Int("records", len(batch)), slog.Int("attempt", attempts), slog.Any("err", err))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, 5*time.Second)
	}
}

func (m *Mapping) giveUp(ctx context.Context, f Failure) {
	m.cfg.Log.LogAttrs(ctx, slog.LevelError, "streams: records dropped after their retries",
		slog.String("stream", m.src.ARN()),
		slog.String("first", f.Records[0].Event.Change.SequenceNumber),
		slog.String("last", f.Records[len(f.Records)-1].Event.Change.SequenceNumber),
		slog.Int("records", len(f.Records)), slog.Int("attempts", f.Attempts), slog.Any("err", f.Err))
	if m.cfg.OnFailure != nil {
		m.cfg.OnFailure(ctx, f)
	}
}

// invoke makes one invocation and returns how many records, from the
// first, are done: all of them, or those before the lowest sequence
// number the function reported failed. err is the invocation's failure,
// and then none is done.
func (m *Mapping) invoke(ctx context.Context, batch []dynamodblocal.Record) (done int, err error) {
	ev := events.DynamoDBEvent{Records: make([]events.DynamoDBEventRecord, len(batch))}
	for i := range batch {
		ev.Records[i] = batch[i].Event
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return 0, err
	}
	// An invocation that started runs to its end, as on Lambda: stopping
	// the mapping must not cut a fan-out off in the middle of a record.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.Timeout)
	defer cancel()
	out, err := m.h.Invoke(ictx, payload)
	if err != nil {
		return 0, fmt.Errorf("invocation failed: %w", err)
	}
	return doneOf(out, batch)
}

// doneOf reads a function's response as Lambda does with
// ReportBatchItemFailures: no response, or no failures, is success; a
// failure naming no record of the batch fails the whole batch; of several
// failures the lowest sequence number counts.
func doneOf(out []byte, batch []dynamodblocal.Record) (int, error) {
	if len(out) == 0 || string(out) == "null" {
		return len(batch), nil
	}
	var resp events.DynamoDBEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return 0, fmt.Errorf("the response is not a batch response: %w", err)
	}
	done := len(batch)
	for _, f := range resp.BatchItemFailures {
		i := index(batch, f.ItemIdentifier)
		if i < 0 {
			return 0, fmt.Errorf("the response names record %q, which is not in the batch", f.ItemIdentifier)
		}
		done = min(done, i)
	}
	return done, nil
}

func index(batch []dynamodblocal.Record, seq string) int {
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return -1
	}
	for i, r := range batch {
		if r.Seq == n {
			return i
		}
	}
	return -1
}
