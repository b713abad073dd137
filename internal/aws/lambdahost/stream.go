package lambdahost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
func (h *Handler) fanout(ctx context.Context, payload []byte) (any, error) {
	ev, err := decodeStream(payload)
	if err != nil {
		return nil, err
	}
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
	changes, err := h.record(ctx, ev)
	if err != nil {
		// Nothing is pushed before its change is in the history, or a
		// client resuming in between would miss it: retry the batch.
		h.log.LogAttrs(ctx, slog.LevelError, "wsbind: fan-out could not record the history", slog.Any("err", err))
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: ev.Records[0].Change.SequenceNumber})
		return resp, nil
	}
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
		ch, ok := changes[i]
		if !ok {
			continue
		}
		if err := host.CallFanout(ctx, h.cfg.Pool, h.cfg.Services, abi.Change(ch)); err != nil {
			h.log.LogAttrs(ctx, slog.LevelError, "wsbind: fan-out failed", slog.String("seq", seq), slog.Any("err", err))
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: seq})
			break
		}
	}
	// Give the pushes retried in the background (a throttled client's) a
	// moment to land before Lambda may freeze the process; those still
	// pending go on when it next runs.
	if f, ok := h.cfg.Services.Poster.(host.Flusher); ok {
		if err := f.Flush(ctx); err != nil {
			h.log.LogAttrs(ctx, slog.LevelWarn, "wsbind: fan-out flush", slog.Any("err", err))
		}
	}
	return resp, nil
}

// record reads the batch's changes and records them in the history, each
// at the position of this moment: the records it cannot read are logged
// and skipped (and absent from the map).
func (h *Handler) record(ctx context.Context, ev *events.DynamoDBEvent) (map[int]store.Change, error) {
	at := time.Now().UnixMilli()
	changes := make(map[int]store.Change, len(ev.Records))
	list := make([]store.Change, 0, len(ev.Records))
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
		ch.At = at
		changes[i] = ch
		list = append(list, ch)
	}
	if hist, ok := h.cfg.Services.Store.(store.History); ok && len(list) > 0 {
		if err := hist.Record(ctx, list); err != nil {
			return nil, err
		}
	}
	return changes, nil
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
