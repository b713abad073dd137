package dynamo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsbind/wsbind/internal/abi"
	"github.com/wsbind/wsbind/internal/host"
	"github.com/wsbind/wsbind/internal/router"
	"github.com/wsbind/wsbind/resource"
)

var (
	_ router.Subscribers = (*Store)(nil)
	_ host.Connections   = (*Store)(nil)
)

// batchSize is BatchWriteItem's limit of requests per call.
const batchSize = 25

// Backoff of unprocessed batch deletes: doubling from retryBase, at most
// retryMax apart, retries attempts in all. Variables for the tests.
var (
	retryBase = 20 * time.Millisecond
	retryMax  = time.Second
)

const retries = 10

// putUser adds the user's attributes: user_id unless anonymous, claims
// unless there are none.
func putUser(m map[string]types.AttributeValue, u resource.User) {
	if u.ID != "" {
		m[attrUserID] = str(u.ID)
	}
	if len(u.Claims) > 0 {
		c := make(map[string]types.AttributeValue, len(u.Claims))
		for k, v := range u.Claims {
			c[k] = str(v)
		}
		m[attrClaims] = &types.AttributeValueMemberM{Value: c}
	}
}

// userOf reads what putUser wrote. Claims that are not strings (another
// writer's) are left out rather than guessed at.
func userOf(m map[string]types.AttributeValue) resource.User {
	var u resource.User
	if v, ok := m[attrUserID].(*types.AttributeValueMemberS); ok {
		u.ID = v.Value
	}
	if v, ok := m[attrClaims].(*types.AttributeValueMemberM); ok && len(v.Value) > 0 {
		u.Claims = make(map[string]string, len(v.Value))
		for k, c := range v.Value {
			if s, ok := c.(*types.AttributeValueMemberS); ok {
				u.Claims[k] = s.Value
			}
		}
	}
	return u
}

// expired reports whether a record's ttl has passed. DynamoDB deletes
// expired items only within days, so reads must skip them themselves. A
// record without a ttl never expires.
func (s *Store) expired(m map[string]types.AttributeValue) bool {
	v, ok := m[attrTTL].(*types.AttributeValueMemberN)
	if !ok {
		return false
	}
	ttl, err := strconv.ParseInt(v.Value, 10, 64)
	return err == nil && ttl <= s.now().Unix()
}

// Subscribe implements resource.Store with one unconditional PutItem:
// subscribing again overwrites the same record. The record expires a
// connection lifetime from now, which is never before its connection's.
func (s *Store) Subscribe(ctx context.Context, sub resource.Subscription) error {
	if sub.Topic == "" || sub.ConnID == "" || len(sub.Topic) > maxPartitionKey || len(sub.ConnID) > maxSortKey {
		return fmt.Errorf("dynamo: subscribe: %w: topic and connection id must be 1 to %d and %d bytes", ErrInvalid, maxPartitionKey, maxSortKey)
	}
	item := map[string]types.AttributeValue{
		attrTopic:  str(sub.Topic),
		attrConnID: str(sub.ConnID),
		attrTTL:    num(s.now().Add(Lifetime).Unix()),
	}
	putUser(item, sub.User)
	if _, err := s.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.t.Subscriptions, Item: item}); err != nil {
		return fmt.Errorf("dynamo: subscribe %s to %s: %w", sub.ConnID, sub.Topic, err)
	}
	return nil
}

// Subscribers implements router.Subscribers with one strongly consistent
// Query of the topic's partition (more only past 1 MB of subscribers),
// in connection id order, expired subscriptions left out.
func (s *Store) Subscribers(ctx context.Context, topic string) ([]resource.Subscription, error) {
	if topic == "" || len(topic) > maxPartitionKey {
		return nil, nil
	}
	in := &dynamodb.QueryInput{
		TableName:                 &s.t.Subscriptions,
		KeyConditionExpression:    aws.String("#t = :t"),
		ExpressionAttributeNames:  map[string]string{"#t": attrTopic},
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": str(topic)},
		ConsistentRead:            aws.Bool(true),
	}
	var out []resource.Subscription
	for {
		page, err := s.c.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("dynamo: subscribers of %s: %w", topic, err)
		}
		for _, m := range page.Items {
			conn, ok := m[attrConnID].(*types.AttributeValueMemberS)
			if !ok || s.expired(m) {
				continue
			}
			out = append(out, resource.Subscription{Topic: topic, ConnID: conn.Value, User: userOf(m)})
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// PutConn implements host.Connections with one PutItem. The record
// expires Lifetime after the connection was made (e.At, or now).
func (s *Store) PutConn(ctx context.Context, e abi.ConnEvent) error {
	if e.ConnID == "" || len(e.ConnID) > maxPartitionKey {
		return fmt.Errorf("dynamo: put connection: %w: connection id must be 1 to %d bytes", ErrInvalid, maxPartitionKey)
	}
	at := e.At
	if at <= 0 {
		at = s.now().UnixMilli()
	}
	item := map[string]types.AttributeValue{
		attrConnID:      str(e.ConnID),
		attrConnectedAt: num(at),
		attrTTL:         num(time.UnixMilli(at).Add(Lifetime).Unix()),
	}
	putUser(item, e.User)
	if _, err := s.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.t.Connections, Item: item}); err != nil {
		return fmt.Errorf("dynamo: put connection %s: %w", e.ConnID, err)
	}
	return nil
}

// Conn returns a recorded connection, ok false when there is none or it
// expired. It is one strongly consistent GetItem.
func (s *Store) Conn(ctx context.Context, connID string) (e abi.ConnEvent, ok bool, err error) {
	if connID == "" || len(connID) > maxPartitionKey {
		return e, false, nil
	}
	out, err := s.c.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.t.Connections,
		Key:            map[string]types.AttributeValue{attrConnID: str(connID)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return e, false, fmt.Errorf("dynamo: get connection %s: %w", connID, err)
	}
	if len(out.Item) == 0 || s.expired(out.Item) {
		return e, false, nil
	}
	e = abi.ConnEvent{Kind: abi.EventConnect, ConnID: connID, User: userOf(out.Item)}
	if v, ok := out.Item[attrConnectedAt].(*types.AttributeValueMemberN); ok {
		e.At, _ = strconv.ParseInt(v.Value, 10, 64)
	}
	return e, true, nil
}

// DropConn implements host.Connections: one DeleteItem of the
// connection, one Query of the by_conn index for its subscriptions (more
// only past 1 MB), and one BatchWriteItem per 25 of them. The index is
// eventually consistent, so a subscription made a moment before may be
// missed; its ttl ends it.
func (s *Store) DropConn(ctx context.Context, connID string) error {
	if connID == "" || len(connID) > maxPartitionKey {
		return nil
	}
	if _, err := s.c.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &s.t.Connections,
		Key:       map[string]types.AttributeValue{attrConnID: str(connID)},
	}); err != nil {
		return fmt.Errorf("dynamo: drop connection %s: %w", connID, err)
	}
	in := &dynamodb.QueryInput{
		TableName:                 &s.t.Subscriptions,
		IndexName:                 aws.String(IndexByConn),
		KeyConditionExpression:    aws.String("#c = :c"),
		ExpressionAttributeNames:  map[string]string{"#c": attrConnID, "#t": attrTopic},
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": str(connID)},
		ProjectionExpression:      aws.String("#t, #c"),
	}
	var dels []types.WriteRequest
	for {
		page, err := s.c.Query(ctx, in)
		if err != nil {
			return fmt.Errorf("dynamo: drop connection %s: subscriptions: %w", connID, err)
		}
		for _, m := range page.Items {
			topic, ok := m[attrTopic].(*types.AttributeValueMemberS)
			if !ok {
				continue
			}
			dels = append(dels, types.WriteRequest{DeleteRequest: &types.DeleteRequest{
				Key: map[string]types.AttributeValue{attrTopic: topic, attrConnID: str(connID)},
			}})
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	for len(dels) > 0 {
		n := min(len(dels), batchSize)
		if err := s.batchWrite(ctx, s.t.Subscriptions, dels[:n]); err != nil {
			return fmt.Errorf("dynamo: drop connection %s: %w", connID, err)
		}
		dels = dels[n:]
	}
	return nil
}

// batchWrite sends one BatchWriteItem and resends what DynamoDB left
// unprocessed (throttling) with jittered exponential backoff.
func (s *Store) batchWrite(ctx context.Context, table string, reqs []types.WriteRequest) error {
	pending := map[string][]types.WriteRequest{table: reqs}
	delay := retryBase
	for attempt := 1; ; attempt++ {
		out, err := s.c.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
		if err != nil {
			return err
		}
		if len(out.UnprocessedItems[table]) == 0 {
			return nil
		}
		pending = map[string][]types.WriteRequest{table: out.UnprocessedItems[table]}
		if attempt == retries {
			return fmt.Errorf("%d deletes still unprocessed after %d attempts", len(pending[table]), retries)
		}
		// Jitter, so that concurrent disconnects do not retry in step.
		t := time.NewTimer(rand.N(delay) + delay/2)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(ctx.Err(), fmt.Errorf("%d deletes unprocessed", len(pending[table])))
		case <-t.C:
		}
		delay = min(2*delay, retryMax)
	}
}
