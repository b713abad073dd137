package dynamo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsbind/wsbind/internal/core/identity"
	"github.com/wsbind/wsbind/internal/core/store"
)

var (
	_ store.Subscribers = (*Store)(nil)
	_ store.Connections = (*Store)(nil)
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

// putUser adds the user's attributes: user_id unless anonymous, roles
// (in order) unless there are none, claims unless there are none.
func putUser(m map[string]types.AttributeValue, u identity.User) {
	if u.ID != "" {
		m[attrUserID] = str(u.ID)
	}
	if len(u.Roles) > 0 {
		l := make([]types.AttributeValue, len(u.Roles))
		for i, r := range u.Roles {
			l[i] = str(r)
		}
		m[attrRoles] = &types.AttributeValueMemberL{Value: l}
	}
	if len(u.Claims) > 0 {
		c := make(map[string]types.AttributeValue, len(u.Claims))
		for k, v := range u.Claims {
			c[k] = str(v)
		}
		m[attrClaims] = &types.AttributeValueMemberM{Value: c}
	}
}

// userOf reads what putUser wrote. Roles and claims that are not strings
// (another writer's) are left out rather than guessed at.
func userOf(m map[string]types.AttributeValue) identity.User {
	var u identity.User
	if v, ok := m[attrUserID].(*types.AttributeValueMemberS); ok {
		u.ID = v.Value
	}
	if v, ok := m[attrRoles].(*types.AttributeValueMemberL); ok && len(v.Value) > 0 {
		u.Roles = make([]string, 0, len(v.Value))
		for _, r := range v.Value {
			if s, ok := r.(*types.AttributeValueMemberS); ok {
				u.Roles = append(u.Roles, s.Value)
			}
		}
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

// subKey is a subscription's sort key in its topic: the connection id,
// then "#" and the filter when there is one. ok is false for a
// subscription no record can hold: an empty or oversize topic or key.
func subKey(sub store.Subscription) (key string, ok bool) {
	key = sub.ConnID
	if sub.Filter != "" {
		key += "#" + sub.Filter
	}
	return key, sub.Topic != "" && sub.ConnID != "" && len(sub.Topic) <= maxPartitionKey && len(key) <= maxSortKey
}

// Subscribe implements store.Store with one unconditional PutItem, then
// one strongly consistent GetItem of the connection's record: subscribing
// again overwrites the same record (same topic, connection and filter),
// which expires a connection lifetime from now, never before its
// connection's.
//
// A connection's messages are routed concurrently with its $disconnect,
// so DropConn may run while a subscribe of that connection is in flight.
// The read after the write closes that race: DropConn deletes the
// connection record before it looks for the connection's subscriptions,
// so either this read comes after that delete, finds no record and the
// subscription is deleted here (one DeleteItem; nil is returned, as the
// client is gone and nothing needs the answer), or it came before, and
// then the write did too, before DropConn's query began (RATIONALE: "Why
// does a subscribe read its connection back?"). A connection whose record
// expired counts as gone. When the read fails, the subscription is
// deleted too, so that a failed subscribe leaves nothing behind.
func (s *Store) Subscribe(ctx context.Context, sub store.Subscription) error {
	key, ok := subKey(sub)
	if !ok {
		return fmt.Errorf("dynamo: subscribe: %w: topic and connection id#filter must be 1 to %d and %d bytes", ErrInvalid, maxPartitionKey, maxSortKey)
	}
	item := map[string]types.AttributeValue{
		attrTopic:  str(sub.Topic),
		attrSub:    str(key),
		attrConnID: str(sub.ConnID),
		attrTTL:    num(s.now().Add(Lifetime).Unix()),
	}
	if sub.Filter != "" {
		item[attrFilter] = str(sub.Filter)
	}
	putUser(item, sub.User)
	if _, err := s.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.t.Subscriptions, Item: item}); err != nil {
		return fmt.Errorf("dynamo: subscribe %s to %s: %w", sub.ConnID, sub.Topic, err)
	}
	live, err := s.connLive(ctx, sub.ConnID)
	if err == nil && live {
		return nil
	}
	if err != nil {
		err = fmt.Errorf("dynamo: subscribe %s to %s: reading the connection back: %w", sub.ConnID, sub.Topic, err)
	}
	if derr := s.deleteSub(ctx, sub.Topic, key); derr != nil {
		err = errors.Join(err, fmt.Errorf("dynamo: subscribe %s to %s: the connection may be gone, and taking the subscription back failed: %w", sub.ConnID, sub.Topic, derr))
	}
	return err
}

// connLive reports whether a connection is recorded and not expired, with
// one strongly consistent GetItem of its record's key and ttl.
func (s *Store) connLive(ctx context.Context, connID string) (bool, error) {
	out, err := s.c.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                &s.t.Connections,
		Key:                      map[string]types.AttributeValue{attrConnID: str(connID)},
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#c, #ttl"),
		ExpressionAttributeNames: map[string]string{"#c": attrConnID, "#ttl": attrTTL},
	})
	if err != nil {
		return false, err
	}
	return len(out.Item) > 0 && !s.expired(out.Item), nil
}

// deleteSub deletes one subscription record with one DeleteItem.
func (s *Store) deleteSub(ctx context.Context, topic, key string) error {
	_, err := s.c.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &s.t.Subscriptions,
		Key:       map[string]types.AttributeValue{attrTopic: str(topic), attrSub: str(key)},
	})
	return err
}

// Unsubscribe implements store.Store with one DeleteItem of the
// record of sub's topic, connection and filter. A subscription no record
// can hold is not there to remove: no request.
func (s *Store) Unsubscribe(ctx context.Context, sub store.Subscription) error {
	key, ok := subKey(sub)
	if !ok {
		return nil
	}
	if err := s.deleteSub(ctx, sub.Topic, key); err != nil {
		return fmt.Errorf("dynamo: unsubscribe %s from %s: %w", sub.ConnID, sub.Topic, err)
	}
	return nil
}

// subscribersInFlight bounds the topic queries one Subscribers call has
// in flight.
const subscribersInFlight = 8

// Subscribers implements store.Subscribers with one strongly
// consistent Query per topic (more only past 1 MB of a topic's
// subscribers), at most subscribersInFlight at a time. The result is in
// the order of topics (a repeated topic counts once), each topic's
// subscriptions in sort key order, expired ones left out. The first
// query to fail ends the call.
func (s *Store) Subscribers(ctx context.Context, topics []string) ([]store.Subscription, error) {
	var distinct []string
	seen := make(map[string]bool, len(topics))
	for _, t := range topics {
		if !seen[t] && t != "" && len(t) <= maxPartitionKey {
			seen[t] = true
			distinct = append(distinct, t)
		}
	}
	if len(distinct) <= 1 {
		if len(distinct) == 0 {
			return nil, nil
		}
		return s.topicSubscribers(ctx, distinct[0])
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([][]store.Subscription, len(distinct))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, subscribersInFlight)
	for i, topic := range distinct {
		sem <- struct{}{}
		if ctx.Err() != nil {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			subs, err := s.topicSubscribers(ctx, topic)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				cancel()
				return
			}
			results[i] = subs
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil { // the caller's context ended
		return nil, fmt.Errorf("dynamo: subscribers: %w", err)
	}
	var out []store.Subscription
	for _, subs := range results {
		out = append(out, subs...)
	}
	return out, nil
}

// topicSubscribers returns the live subscriptions of one topic.
func (s *Store) topicSubscribers(ctx context.Context, topic string) ([]store.Subscription, error) {
	in := &dynamodb.QueryInput{
		TableName:                 &s.t.Subscriptions,
		KeyConditionExpression:    aws.String("#t = :t"),
		ExpressionAttributeNames:  map[string]string{"#t": attrTopic},
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": str(topic)},
		ConsistentRead:            aws.Bool(true),
	}
	var out []store.Subscription
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
			sub := store.Subscription{Topic: topic, ConnID: conn.Value, User: userOf(m)}
			if f, ok := m[attrFilter].(*types.AttributeValueMemberS); ok {
				sub.Filter = f.Value
			}
			out = append(out, sub)
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// PutConn implements store.Connections with one PutItem. The record
// expires Lifetime after the connection was made (e.At, or now).
func (s *Store) PutConn(ctx context.Context, e store.Conn) error {
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
func (s *Store) Conn(ctx context.Context, connID string) (e store.Conn, ok bool, err error) {
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
	e = store.Conn{ConnID: connID, User: userOf(out.Item)}
	if v, ok := out.Item[attrConnectedAt].(*types.AttributeValueMemberN); ok {
		e.At, _ = strconv.ParseInt(v.Value, 10, 64)
	}
	return e, true, nil
}

// DropConn implements store.Connections: one DeleteItem of the
// connection, one Query of the by_conn index for its subscriptions (more
// only past 1 MB), and one BatchWriteItem per 25 of them. The record goes
// first: a Subscribe that reads it back after that deletes its own
// subscription, so the query has to find only those written before it
// began. The index is eventually consistent, so one written a moment
// before may still be missed; the fan-out's next push to it gets a 410
// and drops the connection again (a second query, which finds it by
// then), and its ttl ends it at the latest (RATIONALE: "Why does a
// subscribe read its connection back?").
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
		ExpressionAttributeNames:  map[string]string{"#c": attrConnID, "#t": attrTopic, "#s": attrSub},
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": str(connID)},
		ProjectionExpression:      aws.String("#t, #s"),
	}
	var dels []types.WriteRequest
	for {
		page, err := s.c.Query(ctx, in)
		if err != nil {
			return fmt.Errorf("dynamo: drop connection %s: subscriptions: %w", connID, err)
		}
		for _, m := range page.Items {
			topic, ok1 := m[attrTopic].(*types.AttributeValueMemberS)
			sub, ok2 := m[attrSub].(*types.AttributeValueMemberS)
			if !ok1 || !ok2 {
				continue
			}
			dels = append(dels, types.WriteRequest{DeleteRequest: &types.DeleteRequest{
				Key: map[string]types.AttributeValue{attrTopic: topic, attrSub: sub},
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
