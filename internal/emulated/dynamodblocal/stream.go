package dynamodblocal

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Record is one change of a table, as a stream holds it.
type Record struct {
	// Seq is the record's position: greater for every later write to any
	// table of the Server. Event.Change.SequenceNumber is its text.
	Seq uint64
	// Event is the record as Lambda delivers it to a function.
	Event events.DynamoDBEventRecord
}

// Stream is the change stream of one table: every successful write, in
// the order the writes happened, kept for the Server's Retention. It is
// safe for concurrent use; readers keep their own position.
type Stream struct {
	arn       string
	table     string
	region    string
	retention time.Duration
	now       func() time.Time

	mu      sync.Mutex
	recs    []storedRecord
	wake    chan struct{} // closed and replaced on every append
	deleted bool
}

// storedRecord is a record as the stream keeps it: the change, whose
// items the table shares, and what the event needs besides. A Record's
// event (its images decoded, its ids formatted) is several times the
// size of the item; it is made when the record is read (Stream.event),
// so that a day's retention costs about a hundred bytes a write, plus
// the old items a write replaced.
type storedRecord struct {
	seq  uint64
	at   time.Time
	size int
	ch   change
}

func newStream(arn, table, region string, retention time.Duration, now func() time.Time) *Stream {
	return &Stream{arn: arn, table: table, region: region, retention: retention, now: now, wake: make(chan struct{})}
}

// ARN is the stream's ARN, the eventSourceARN of its records.
func (st *Stream) ARN() string { return st.arn }

// Table is the name of the table whose changes the stream holds.
func (st *Stream) Table() string { return st.table }

// Last returns the Seq of the newest record, 0 when there is none: the
// position of a reader that starts at LATEST.
func (st *Stream) Last() uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.recs) == 0 {
		return 0
	}
	return st.recs[len(st.recs)-1].seq
}

// append adds a record and wakes the readers. Records past the
// retention are dropped here, as DynamoDB Streams drops them after 24
// hours: a reader that far behind starts again at the oldest one kept.
func (st *Stream) append(ch change, seq uint64, at time.Time, size int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	cut := 0
	horizon := st.now().Add(-st.retention)
	for cut < len(st.recs) && st.recs[cut].at.Before(horizon) {
		cut++
	}
	if cut > 0 {
		st.recs = append(st.recs[:0:0], st.recs[cut:]...)
	}
	ch.key = "" // the stream needs the items, not the table's key
	st.recs = append(st.recs, storedRecord{seq: seq, at: at, size: size, ch: ch})
	close(st.wake)
	st.wake = make(chan struct{})
}

// closeStream marks the stream's table deleted: readers get what is left
// and then ErrStreamClosed.
func (st *Stream) closeStream() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.deleted = true
	close(st.wake)
	st.wake = make(chan struct{})
}

// Read returns up to limit records with Seq greater than after, oldest
// first, waiting until there is at least one. It returns ctx's error when
// ctx ends first, and ErrStreamClosed when the table was deleted and no
// record is left to read. limit < 1 means 1.
func (st *Stream) Read(ctx context.Context, after uint64, limit int) ([]Record, error) {
	limit = max(limit, 1)
	for {
		st.mu.Lock()
		i := st.search(after)
		if i < len(st.recs) {
			n := min(len(st.recs)-i, limit)
			recs := slices.Clone(st.recs[i : i+n])
			st.mu.Unlock()
			out := make([]Record, n)
			for j := range recs {
				out[j] = Record{Seq: recs[j].seq, Event: st.event(&recs[j])}
			}
			return out, nil
		}
		if st.deleted {
			st.mu.Unlock()
			return nil, ErrStreamClosed
		}
		wake := st.wake
		st.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		}
	}
}

// search returns the index of the first record with Seq > after.
func (st *Stream) search(after uint64) int {
	lo, hi := 0, len(st.recs)
	for lo < hi {
		m := (lo + hi) / 2
		if st.recs[m].seq <= after {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}
