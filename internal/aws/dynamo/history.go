package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsbind/wsbind/internal/core/store"
)

// The history table's attributes (RATIONALE: "Why is the history written
// by the fan-out, and a cursor a time?").
const (
	attrPart    = "part"    // partition key (S): the items table's _stream of the change
	attrPos     = "pos"     // sort key (S): position: at (13 digits), version, pk
	attrHStream = "stream"  // the stream of a scoped change (S); by_stream's partition key
	attrAt      = "at"      // N, Unix ms
	attrKind    = "kind"    // S: create, update or delete
	attrPK      = "pk"      // S
	attrVer     = "version" // N
	attrOld     = "old"     // S: the image before, absent on create
	attrNew     = "new"     // S: the image after, absent on delete

	// IndexByStream is the history's sparse index of scoped changes by
	// stream, which serves a replay of every scope.
	IndexByStream = "by_stream"

	// DefaultRetention is how long the history keeps a change.
	DefaultRetention = 24 * time.Hour

	// maxPosPK bounds the pk's share of a position, within DynamoDB's
	// 1,024-byte sort key: 13 digits of time, 19 of version, two #.
	maxPosPK = 960
)

var _ store.History = (*Store)(nil)

// pos is a change's position: ordered by time, then version (zero-padded,
// so that version 10 of an object sorts after its version 9 taken in the
// same millisecond: a replay in the other order would make clients drop
// 9 as a repeat), unique by pk.
func pos(ch store.Change) string {
	pk := ch.PK
	if len(pk) > maxPosPK {
		pk = pk[:maxPosPK]
	}
	return fmt.Sprintf("%013d#%019d#%s", ch.At, ch.Version, pk)
}

// Record writes the changes to the history table, 25 to a request,
// resending what DynamoDB leaves unprocessed. Each expires (TTL) after
// the retention. Without a history table it records nothing (and a
// resume then fails).
func (s *Store) Record(ctx context.Context, changes []store.Change) error {
	if s.t.History == "" {
		return nil
	}
	reqs := make([]types.WriteRequest, 0, min(len(changes), batchSize))
	flush := func() error {
		if len(reqs) == 0 {
			return nil
		}
		err := s.batchWrite(ctx, s.t.History, reqs)
		reqs = reqs[:0]
		return err
	}
	for _, ch := range changes {
		item := map[string]types.AttributeValue{
			attrPart: str(partition(store.Part{Stream: ch.Stream, Scope: ch.Scope})),
			attrPos:  str(pos(ch)),
			attrAt:   num(ch.At),
			attrKind: str(ch.Kind),
			attrPK:   str(ch.PK),
			attrVer:  num(ch.Version),
			attrTTL:  num(time.UnixMilli(ch.At).Add(s.retention).Unix()),
		}
		if ch.Scope != "" {
			item[attrHStream] = str(ch.Stream)
		}
		if ch.Old != nil {
			item[attrOld] = str(string(ch.Old))
		}
		if ch.New != nil {
			item[attrNew] = str(string(ch.New))
		}
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
		if len(reqs) == batchSize {
			if err := flush(); err != nil {
				return fmt.Errorf("dynamo: record history: %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		return fmt.Errorf("dynamo: record history: %w", err)
	}
	return nil
}

// Since queries p's history from the position from on, oldest first: a
// consistent read of the part's partition, or for p.All an eventually
// consistent read of the stream's scoped changes (by_stream). Changes
// past their time to live that DynamoDB has not yet deleted are left out.
func (s *Store) Since(ctx context.Context, p store.Part, from int64, limit int) ([]store.Change, error) {
	if s.t.History == "" {
		return nil, errors.New("dynamo: no history table (WSBIND_TABLE_HISTORY)")
	}
	start := fmt.Sprintf("%013d", max(from, 0))
	in := &dynamodb.QueryInput{
		TableName:              aws.String(s.t.History),
		KeyConditionExpression: aws.String("#k = :k AND #p >= :p"),
		ExpressionAttributeNames: map[string]string{
			"#k": attrPart, "#p": attrPos,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":k": str(partition(p)), ":p": str(start),
		},
		ConsistentRead: aws.Bool(true),
	}
	if p.All {
		in.IndexName = aws.String(IndexByStream)
		in.ExpressionAttributeNames["#k"] = attrHStream
		in.ExpressionAttributeValues[":k"] = str(p.Stream)
		in.ConsistentRead = nil
	}
	if limit > 0 {
		in.Limit = aws.Int32(int32(min(limit, 1<<30)))
	}
	now := s.now().Unix()
	var out []store.Change
	for {
		page, err := s.c.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("dynamo: history of %s: %w", partition(p), err)
		}
		for _, it := range page.Items {
			if ttl, ok := numAttr(it, attrTTL); ok && ttl <= now {
				continue
			}
			ch, err := changeOfHistory(it)
			if err != nil {
				return nil, err
			}
			out = append(out, ch)
		}
		if len(page.LastEvaluatedKey) == 0 || (limit > 0 && len(out) >= limit) {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// changeOfHistory reads one history item back.
func changeOfHistory(it map[string]types.AttributeValue) (store.Change, error) {
	var ch store.Change
	part, _ := sAttr(it, attrPart)
	ch.Stream, ch.Scope = splitPartition(part)
	ch.Kind, _ = sAttr(it, attrKind)
	ch.PK, _ = sAttr(it, attrPK)
	ch.Version, _ = numAttr(it, attrVer)
	ch.At, _ = numAttr(it, attrAt)
	if v, ok := sAttr(it, attrOld); ok {
		ch.Old = []byte(v)
	}
	if v, ok := sAttr(it, attrNew); ok {
		ch.New = []byte(v)
	}
	if ch.Kind == "" || ch.PK == "" || ch.At == 0 {
		return ch, fmt.Errorf("dynamo: history item %s/%v is not one of wsbind's", part, it[attrPos])
	}
	return ch, nil
}

// splitPartition reads an items-table partition back into its stream
// and scope.
func splitPartition(part string) (stream, scope string) {
	for i := 0; i < len(part); i++ {
		if part[i] == scopeSep[0] {
			return part[:i], part[i+1:]
		}
	}
	return part, ""
}

// numAttr reads a number attribute as an int64.
func numAttr(it map[string]types.AttributeValue, name string) (int64, bool) {
	n, ok := it[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	return v, err == nil
}

// sAttr reads a string attribute.
func sAttr(it map[string]types.AttributeValue, name string) (string, bool) {
	v, ok := it[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", false
	}
	return v.Value, true
}
