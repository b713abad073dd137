package lambdahost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsbind/wsbind/internal/aws/dynamo"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/internal/sandbox/host"
)

// fanout serves the items table's stream: one guest call per record, in
// order. At the first record not delivered it stops and reports that
// record, so Lambda retries the batch from there; the records after it
// are not attempted.
func (h *Handler) fanout(ctx context.Context, payload []byte, in *invocation) (any, error) {
	ev, err := decodeStream(payload)
	if err != nil {
		return nil, err
	}
	in.records = len(ev.Records)
	resp := events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{}}
	if dl, ok := ctx.Deadline(); ok {
		// Stop posting a little before Lambda's deadline, so the batch
		// response (which records were done) still gets out: a timed-out
		// invocation retries the whole batch.
		reserve := min(time.Until(dl)/10, time.Second)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-reserve))
		defer cancel()
	}
	changes := h.decode(ctx, ev)
	// Nothing is pushed before its change is in the history, or a client
	// resuming in between would miss it; and nothing is in the history
	// before an earlier change of the same object has been pushed, or a
	// replay could hand a client an object's later version ahead of one
	// still on its way live, which would then look like a repeat. So each
	// change is recorded when its turn comes, together with the following
	// ones up to the next change of an object among them (one write for
	// up to 25).
	//
	// A change waiting its turn needs nothing more: its subscribers are
	// read when its turn comes, so a client that resubscribed meanwhile
	// is among them. From then until its pushes are out, though, a client
	// cut off before its push arrived resumes from a cursor no later than
	// the cut, and the replay (from the cursor less the overlap) must
	// still reach the change: so its position is kept within Refresh of
	// the present, recorded again when its turn comes if it has aged, and
	// while its posts go on.
	fr := h.fresh(ctx, changes)
	defer fr.stop()
	for i := range ev.Records {
		rec := &ev.Records[i]
		seq := rec.Change.SequenceNumber
		if err := ctx.Err(); err != nil {
			// Out of time: leave the rest for the retry rather than be
			// cut off in the middle of a record.
			h.log.LogAttrs(ctx, slog.LevelWarn, "wsbind: fan-out stopped", slog.String("seq", seq), slog.Any("err", err))
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: seq})
			break
		}
		if _, ok := changes[i]; !ok {
			continue
		}
		ch, err := fr.turn(ctx, i, len(ev.Records))
		if err != nil {
			// Retried from this record: the ones before it are out.
			h.log.LogAttrs(ctx, slog.LevelError, "wsbind: fan-out could not record the history", slog.String("seq", seq), slog.Any("err", err))
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: seq})
			break
		}
		if err := host.CallFanout(ctx, h.cfg.Pool, h.cfg.Services, abi.Change(ch)); err != nil {
			in.trap = isTrap(err)
			h.log.LogAttrs(ctx, slog.LevelError, "wsbind: fan-out failed", slog.String("seq", seq), slog.Any("err", err))
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: seq})
			break
		}
		if at := rec.Change.ApproximateCreationDateTime; !at.IsZero() {
			in.lags = append(in.lags, time.Since(at.Time).Milliseconds())
		}
	}
	// Give the pushes retried in the background (a throttled client's) a
	// moment to land before Lambda may freeze the process; those still
	// pending go on when it next runs. Any change of the batch may have
	// one among them, so all are kept fresh meanwhile.
	fr.posting(0, len(ev.Records))
	if f, ok := h.cfg.Services.Poster.(host.Flusher); ok {
		if err := f.Flush(ctx); err != nil {
			h.log.LogAttrs(ctx, slog.LevelWarn, "wsbind: fan-out flush", slog.Any("err", err))
		}
	}
	in.failures = len(resp.BatchItemFailures)
	return resp, nil
}

// freshness keeps the positions of a batch's changes whose pushes are
// going out within Refresh of the present (see fanout).
type freshness struct {
	h       *Handler
	hist    store.History // nil: no history to keep fresh
	mu      sync.Mutex
	changes map[int]store.Change // by record index, At their latest position
	lo, hi  int                  // the records whose posts are going out
	done    chan struct{}
	wg      sync.WaitGroup
}

// fresh starts keeping changes fresh, checking every Refresh/4, until stop.
func (h *Handler) fresh(ctx context.Context, changes map[int]store.Change) *freshness {
	fr := &freshness{h: h, changes: maps.Clone(changes), done: make(chan struct{})}
	fr.hist, _ = h.cfg.Services.Store.(store.History)
	if fr.hist == nil || len(changes) == 0 {
		return fr
	}
	fr.wg.Go(func() {
		t := time.NewTicker(h.cfg.Refresh / 4)
		defer t.Stop()
		for {
			select {
			case <-fr.done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			fr.mu.Lock()
			lo, hi := fr.lo, fr.hi
			fr.mu.Unlock()
			if n, err := fr.renew(ctx, lo, hi); err != nil {
				// The posts go on: only a client cut off in the next
				// moments, and then only if no later refresh lands,
				// could miss one.
				h.log.LogAttrs(ctx, slog.LevelWarn, "wsbind: fan-out could not refresh the history of changes being pushed",
					slog.Int("changes", n), slog.Any("err", err))
			}
		}
	})
	return fr
}

// turn marks record i's posts as going out and returns its change at its
// latest position: recorded now if it is not yet, or again if its
// position has aged by renewAge, with the following changes up to the
// next change of an object among them (see fanout).
func (fr *freshness) turn(ctx context.Context, i, n int) (store.Change, error) {
	now := time.Now().UnixMilli()
	fr.mu.Lock()
	at := fr.changes[i].At
	fr.mu.Unlock()
	switch {
	case fr.hist == nil:
		if at == 0 {
			fr.mu.Lock()
			ch := fr.changes[i]
			ch.At = now
			fr.changes[i] = ch
			fr.mu.Unlock()
		}
	case at == 0 || now-at >= fr.h.renewAge():
		if err := fr.recordRun(ctx, i, n); err != nil {
			return store.Change{}, err
		}
	}
	fr.posting(i, i+1)
	fr.mu.Lock()
	defer fr.mu.Unlock()
	return fr.changes[i], nil
}

// recordRun records, at the present position, the changes from i on that
// are not recorded or have aged, stopping before the second change of
// any object (or after renewAhead).
func (fr *freshness) recordRun(ctx context.Context, i, n int) error {
	now := time.Now().UnixMilli()
	fr.mu.Lock()
	var list []store.Change
	var idx []int
	objects := map[[3]string]bool{}
	for j := i; j < n && len(list) < renewAhead; j++ {
		ch, ok := fr.changes[j]
		if !ok {
			continue
		}
		obj := [3]string{ch.Stream, ch.Scope, ch.PK}
		if objects[obj] {
			break
		}
		objects[obj] = true
		if ch.At == 0 || now-ch.At >= fr.h.renewAge() {
			ch.At = now
			list = append(list, ch)
			idx = append(idx, j)
		}
	}
	fr.mu.Unlock()
	if len(list) == 0 {
		return nil
	}
	if err := fr.hist.Record(ctx, list); err != nil {
		return err
	}
	fr.set(list, idx)
	return nil
}

// set notes the positions list was recorded at, for the records idx.
func (fr *freshness) set(list []store.Change, idx []int) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	for k, j := range idx {
		if cur := fr.changes[j]; cur.At < list[k].At {
			cur.At = list[k].At
			fr.changes[j] = cur
		}
	}
}

// renewAhead is how many records a refresh at a record's turn covers: the
// next ones are likely to need it too, and one write carries up to 25.
const renewAhead = 25

// posting sets the records, lo to hi, whose posts are going out.
func (fr *freshness) posting(lo, hi int) {
	fr.mu.Lock()
	fr.lo, fr.hi = lo, hi
	fr.mu.Unlock()
}

// renew records again, at the present position, the changes lo to hi
// whose position is renewAge old or older; it returns how many it tried.
func (fr *freshness) renew(ctx context.Context, lo, hi int) (int, error) {
	now := time.Now().UnixMilli()
	fr.mu.Lock()
	var list []store.Change
	var idx []int
	for i := lo; i < hi; i++ {
		if ch, ok := fr.changes[i]; ok && ch.At != 0 && now-ch.At >= fr.h.renewAge() {
			ch.At = now
			list = append(list, ch)
			idx = append(idx, i)
		}
	}
	fr.mu.Unlock()
	if len(list) == 0 {
		return 0, nil
	}
	if err := fr.hist.Record(ctx, list); err != nil {
		return len(list), err
	}
	fr.set(list, idx)
	return len(list), nil
}

// renewAge is the age at which a change being pushed is recorded again:
// checked every Refresh/4, none gets older than Refresh (and the time a
// write takes), while the changes whose posts take less than this are
// recorded once.
func (h *Handler) renewAge() int64 { return h.cfg.Refresh.Milliseconds() * 3 / 4 }

// stop ends the refreshing.
func (fr *freshness) stop() {
	close(fr.done)
	fr.wg.Wait()
}

// decode reads the batch's changes, by record index, not yet recorded
// (At zero): the records it cannot read are logged and skipped (and
// absent from the map).
func (h *Handler) decode(ctx context.Context, ev *events.DynamoDBEvent) map[int]store.Change {
	changes := make(map[int]store.Change, len(ev.Records))
	for i := range ev.Records {
		rec := &ev.Records[i]
		ch, err := dynamo.ChangeOf(rec)
		if errors.Is(err, dynamo.ErrExpired) {
			continue
		}
		if err != nil {
			h.log.LogAttrs(ctx, slog.LevelWarn, "wsbind: fan-out skipped a record", slog.String("seq", rec.Change.SequenceNumber),
				slog.String("event", rec.EventName), slog.Any("err", err))
			continue
		}
		changes[i] = ch
	}
	return changes
}

// decodeStream reads a DynamoDB stream event. An event of another kind
// fails: it has no Records, or records from another source.
func decodeStream(payload []byte) (*events.DynamoDBEvent, error) {
	var probe struct {
		Records json.RawMessage `json:"Records"`
	}
	if err := json.Unmarshal(payload, &probe); err != nil {
		return nil, fmt.Errorf("not a DynamoDB stream event: %w", err)
	}
	if len(probe.Records) == 0 || probe.Records[0] != '[' {
		return nil, errors.New("not a DynamoDB stream event: no Records")
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("not a DynamoDB stream event: %w", err)
	}
	for i := range ev.Records {
		if src := ev.Records[i].EventSource; src != "aws:dynamodb" {
			return nil, fmt.Errorf("record %d: event source %q, not aws:dynamodb", i, src)
		}
	}
	return &ev, nil
}
