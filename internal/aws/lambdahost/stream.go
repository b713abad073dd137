package lambdahost

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsbind/wsbind/internal/aws/dynamo"
	"github.com/wsbind/wsbind/internal/core/jsonv"
	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/internal/sandbox/host"
)

// The items table's own attributes (RATIONALE: "Why are the items table's
// own attributes named `_stream` and `_version`?"). Attributes whose names
// start with "_" (_stream, _version, _binding) are the table's, not the
// object's.
const (
	attrStream  = "_stream"  // partition key (S): the stream, or stream#scope for a scoped item
	attrID      = "id"       // sort key (S): the object's id, also a field
	attrVersion = "_version" // (N): 1 at create, +1 per write
)

// scopeSep ends the stream in a scoped item's _stream: stream names never
// hold '#', so the stream is what comes before the first one.
const scopeSep = "#"

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
		ch, err := changeOf(rec)
		if errors.Is(err, errSkip) {
			continue
		}
		if err != nil {
			h.log.LogAttrs(ctx, slog.LevelWarn, "wsbind: fan-out skipped a record", slog.String("seq", seq),
				slog.String("event", rec.EventName), slog.Any("err", err))
			continue
		}
		if err := host.Fanout(ctx, h.cfg.Pool, h.cfg.Services, ch); err != nil {
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

// errSkip marks a record that makes no push and needs no log line.
var errSkip = errors.New("skip")

// changeOf turns a stream record of the items table into the guest's
// Change, whose Stream is the binding's stream, without a scoped item's
// scope. It returns errSkip for an expired item that DynamoDB's TTL
// removed (nobody deleted it: no push), and an error, for the log, for a
// record that is not an object of ours: another application's item (its
// keys are not _stream and id), or an image the guest could not read.
func changeOf(rec *events.DynamoDBEventRecord) (abi.Change, error) {
	var ch abi.Change
	keys := rec.Change.Keys
	stream, ok1 := stringAttr(keys, attrStream)
	id, ok2 := stringAttr(keys, attrID)
	if !ok1 || !ok2 || len(keys) != 2 {
		return ch, fmt.Errorf("keys %v are not %s and %s strings: not an item of wsbind's", sortedKeys(keys), attrStream, attrID)
	}
	ch.Stream, _, _ = strings.Cut(stream, scopeSep)
	ch.PK = id
	switch events.DynamoDBOperationType(rec.EventName) {
	case events.DynamoDBOperationTypeInsert:
		ch.Kind = abi.KindCreate
	case events.DynamoDBOperationTypeModify:
		ch.Kind = abi.KindUpdate
	case events.DynamoDBOperationTypeRemove:
		if ui := rec.UserIdentity; ui != nil && ui.Type == "Service" && ui.PrincipalID == "dynamodb.amazonaws.com" {
			return ch, errSkip
		}
		ch.Kind = abi.KindDelete
	default:
		return ch, fmt.Errorf("unknown event name %q", rec.EventName)
	}
	var err error
	if rec.Change.OldImage != nil {
		if ch.Old, err = appendObject(nil, rec.Change.OldImage); err != nil {
			return ch, fmt.Errorf("%s/%s: old image: %w", stream, id, err)
		}
	}
	if rec.Change.NewImage != nil {
		if ch.New, err = appendObject(nil, rec.Change.NewImage); err != nil {
			return ch, fmt.Errorf("%s/%s: new image: %w", stream, id, err)
		}
	}
	if (ch.Kind == abi.KindDelete && ch.Old == nil) || (ch.Kind != abi.KindDelete && ch.New == nil) {
		// Retrying cannot bring the image back.
		return ch, fmt.Errorf("%s/%s: %s record without the image a push needs (stream view type %q, want NEW_AND_OLD_IMAGES)",
			stream, id, rec.EventName, rec.Change.StreamViewType)
	}
	// The version after the change: the new image's, or for a delete the
	// one after the old image's. An item another tool wrote has none (0).
	if ch.Kind == abi.KindDelete {
		if v := versionOf(rec.Change.OldImage); v > 0 {
			ch.Version = v + 1
		}
	} else {
		ch.Version = versionOf(rec.Change.NewImage)
	}
	return ch, nil
}

// versionOf reads an image's _version; 0 when it has none that reads as
// a positive integer.
func versionOf(img map[string]events.DynamoDBAttributeValue) int64 {
	v, ok := img[attrVersion]
	if !ok || v.DataType() != events.DataTypeNumber {
		return 0
	}
	n, err := strconv.ParseInt(v.Number(), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// stringAttr returns attribute k of m if it is a string.
func stringAttr(m map[string]events.DynamoDBAttributeValue, k string) (string, bool) {
	v, ok := m[k]
	if !ok || v.DataType() != events.DataTypeString {
		return "", false
	}
	return v.String(), true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// appendObject appends an item image as the stored JSON object the guest
// reads: one member per attribute not starting with "_" (the table's own:
// _stream, _version, _binding), "id" first and the others by name.
func appendObject(dst []byte, img map[string]events.DynamoDBAttributeValue) ([]byte, error) {
	names := make([]string, 0, len(img))
	for k := range img {
		if !strings.HasPrefix(k, "_") {
			names = append(names, k)
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == attrID:
			return -1
		case b == attrID:
			return 1
		}
		return strings.Compare(a, b)
	})
	dst = append(dst, '{')
	for i, k := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonv.AppendString(dst, k)
		dst = append(dst, ':')
		var err error
		if dst, err = appendValue(dst, img[k]); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	return append(dst, '}'), nil
}

// appendValue appends one attribute value as JSON: S a string, N a
// number written as DynamoDB gave its text (never through float64: up to
// 38 digits), BOOL, NULL, M an object, L an array, SS, NS and BS arrays,
// B and each BS member base64 text.
func appendValue(dst []byte, v events.DynamoDBAttributeValue) ([]byte, error) {
	var err error
	switch v.DataType() {
	case events.DataTypeString:
		return jsonv.AppendString(dst, v.String()), nil
	case events.DataTypeNumber:
		return appendNumber(dst, v.Number())
	case events.DataTypeBoolean:
		if v.Boolean() {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case events.DataTypeNull:
		return append(dst, "null"...), nil
	case events.DataTypeBinary:
		return appendBase64(dst, v.Binary()), nil
	case events.DataTypeMap:
		m := v.Map()
		dst = append(dst, '{')
		for i, k := range sortedKeys(m) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonv.AppendString(dst, k)
			dst = append(dst, ':')
			if dst, err = appendValue(dst, m[k]); err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
		}
		return append(dst, '}'), nil
	case events.DataTypeList:
		dst = append(dst, '[')
		for i, e := range v.List() {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendValue(dst, e); err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return append(dst, ']'), nil
	case events.DataTypeStringSet:
		dst = append(dst, '[')
		for i, s := range v.StringSet() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonv.AppendString(dst, s)
		}
		return append(dst, ']'), nil
	case events.DataTypeNumberSet:
		dst = append(dst, '[')
		for i, n := range v.NumberSet() {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendNumber(dst, n); err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return append(dst, ']'), nil
	case events.DataTypeBinarySet:
		dst = append(dst, '[')
		for i, b := range v.BinarySet() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendBase64(dst, b)
		}
		return append(dst, ']'), nil
	}
	return nil, fmt.Errorf("unknown attribute type %d", v.DataType())
}

func appendBase64(dst []byte, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// appendNumber appends DynamoDB's text of a number as a JSON number,
// unchanged. Text that is not a JSON number is an error, not a guess.
func appendNumber(dst []byte, n string) ([]byte, error) {
	if !isJSONNumber(n) {
		return nil, fmt.Errorf("number %q is not a JSON number", n)
	}
	// The text the store reads back (plain decimal), so that a push and
	// a retrieve of the same item carry the same number text whatever
	// notation the stream used.
	c, err := dynamo.Canonical(n)
	if err != nil {
		return nil, err
	}
	return append(dst, c...), nil
}

// isJSONNumber reports whether s is exactly a JSON number:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(s string) bool {
	i := 0
	digits := func() bool {
		start := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(s)
}
