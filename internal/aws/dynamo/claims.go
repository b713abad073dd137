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

// The idempotency table's attributes (RATIONALE: "Why is an idempotency
// key one conditional write?").
const (
	attrKey     = "key"    // partition key (S): the caller and the key
	attrStreamN = "stream" // S: the stream the key was used on
	attrAction  = "action" // S
	attrLease   = "lease"  // N, Unix ms: when a claim with no reply may be taken over
	attrReply   = "reply"  // B: the reply frame, absent while the first request runs
	// attrTTL (N, Unix seconds) is when the key is free again; DynamoDB's
	// TTL deletes it some time after.
)

// ErrNoClaims is returned by Claim and Settle when the store has no
// idempotency table.
var ErrNoClaims = errors.New("dynamo: no idempotency table (WSBIND_TABLE_IDEMPOTENCY)")

// Claim implements store.Store: one conditional PutItem, which on a key
// already taken returns the stored record (ALL_OLD) in the same request.
func (s *Store) Claim(ctx context.Context, key string, c store.Claim, now time.Time) (store.Claim, error) {
	if s.t.Idempotency == "" {
		return store.Claim{}, ErrNoClaims
	}
	if key == "" || len(key) > maxPartitionKey {
		return store.Claim{}, fmt.Errorf("%w: idempotency key of %d bytes", ErrInvalid, len(key))
	}
	_, err := s.c.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.t.Idempotency),
		Item: map[string]types.AttributeValue{
			attrKey:     str(key),
			attrStreamN: str(c.Stream),
			attrAction:  str(c.Action),
			attrLease:   num(c.Lease.UnixMilli()),
			attrTTL:     num(c.Expires.Unix()),
		},
		// Free: never used, expired (TTL deletes late), or claimed by a
		// request that never stored its reply and whose lease is over.
		ConditionExpression: aws.String("attribute_not_exists(#k) OR #t <= :nowsec OR (attribute_not_exists(#r) AND #l <= :nowms)"),
		ExpressionAttributeNames: map[string]string{
			"#k": attrKey, "#t": attrTTL, "#r": attrReply, "#l": attrLease,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":nowsec": num(now.Unix()),
			":nowms":  num(now.UnixMilli()),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		c.Fresh, c.Reply = true, nil
		return c, nil
	case errors.As(err, &ccf) && ccf.Item != nil:
		return claimOf(ccf.Item)
	case errors.As(err, &ccf):
		// DynamoDB returns the record with the failure; an emulator
		// that does not (dynalite) costs a read.
		out, err := s.c.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(s.t.Idempotency), Key: map[string]types.AttributeValue{attrKey: str(key)}, ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return store.Claim{}, fmt.Errorf("dynamo: read idempotency key: %w", err)
		}
		return claimOf(out.Item)
	}
	return store.Claim{}, fmt.Errorf("dynamo: claim idempotency key: %w", err)
}

// claimOf reads a stored idempotency record.
func claimOf(m map[string]types.AttributeValue) (store.Claim, error) {
	var c store.Claim
	if m == nil {
		return c, fmt.Errorf("%w: idempotency record without its attributes", store.ErrCorrupt)
	}
	if v, ok := m[attrStreamN].(*types.AttributeValueMemberS); ok {
		c.Stream = v.Value
	}
	if v, ok := m[attrAction].(*types.AttributeValueMemberS); ok {
		c.Action = v.Value
	}
	if v, ok := m[attrLease].(*types.AttributeValueMemberN); ok {
		ms, _ := strconv.ParseInt(v.Value, 10, 64)
		c.Lease = time.UnixMilli(ms)
	}
	if v, ok := m[attrTTL].(*types.AttributeValueMemberN); ok {
		sec, _ := strconv.ParseInt(v.Value, 10, 64)
		c.Expires = time.Unix(sec, 0)
	}
	if v, ok := m[attrReply].(*types.AttributeValueMemberB); ok {
		c.Reply = v.Value
		if c.Reply == nil {
			c.Reply = []byte{}
		}
	}
	return c, nil
}

// Settle implements store.Store: an UpdateItem that stores the reply,
// or a DeleteItem that frees the key.
func (s *Store) Settle(ctx context.Context, key string, reply []byte) error {
	if s.t.Idempotency == "" {
		return ErrNoClaims
	}
	k := map[string]types.AttributeValue{attrKey: str(key)}
	var err error
	if reply == nil {
		_, err = s.c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.t.Idempotency), Key: k})
	} else {
		_, err = s.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(s.t.Idempotency),
			Key:                       k,
			UpdateExpression:          aws.String("SET #r = :r"),
			ConditionExpression:       aws.String("attribute_exists(#k)"),
			ExpressionAttributeNames:  map[string]string{"#r": attrReply, "#k": attrKey},
			ExpressionAttributeValues: map[string]types.AttributeValue{":r": &types.AttributeValueMemberB{Value: reply}},
		})
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			// The record is gone (freed by a failing twin): nothing to keep.
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("dynamo: settle idempotency key: %w", err)
	}
	return nil
}
