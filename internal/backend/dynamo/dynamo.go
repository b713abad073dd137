// Package dynamo is the DynamoDB backend: the items store, subscriptions
// and connections of DESIGN.md section 3, each operation one request
// (or one per 1 MB page or 25 deletes) to one of three tables.
//
//	s := dynamo.New(dynamo.Config{Client: dynamodb.NewFromConfig(cfg), Tables: tables})
//	err := s.Create(ctx, "questions", resource.Item{ID: id, Data: obj})
package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/wsbind/wsbind/resource"
)

// Client is the part of *dynamodb.Client the store calls. There is no
// Scan in it, on purpose.
type Client interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

var _ Client = (*dynamodb.Client)(nil)

// Tables names the three tables.
type Tables struct {
	Items         string
	Connections   string
	Subscriptions string
}

// Config configures a Store. Client and Tables are required.
type Config struct {
	Client Client
	Tables Tables
	// Now is the clock that sets and checks expiry. nil means time.Now.
	Now func() time.Time
}

// Attribute names of the tables (DESIGN.md section 3; RATIONALE: "Why are
// the items table's own attributes named `_stream` and `_version`?").
const (
	attrStream  = "_stream" // items: partition key (S)
	attrID      = "id"      // items: sort key (S), also the object's id
	attrVersion = "_version"

	attrConnID      = "conn_id"      // connections: partition key; subscriptions: sort key
	attrTopic       = "topic"        // subscriptions: partition key
	attrUserID      = "user_id"      // absent for anonymous connections
	attrClaims      = "claims"       // M of S
	attrConnectedAt = "connected_at" // N, Unix ms
	attrTTL         = "ttl"          // N, Unix seconds

	// IndexByConn is the subscriptions table's index on conn_id.
	IndexByConn = "by_conn"
)

// Lifetime is how long a connection record lives: API Gateway's 2 hour
// connection limit plus a margin for clocks and a late $disconnect.
const Lifetime = 2*time.Hour + 10*time.Minute

// Store is the DynamoDB backend. It is safe for concurrent use.
type Store struct {
	c   Client
	t   Tables
	now func() time.Time
}

var _ resource.Store = (*Store)(nil)

// New returns a store. The config is copied.
func New(cfg Config) *Store {
	s := &Store{c: cfg.Client, t: cfg.Tables, now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// itemKey returns the key of an item, or ok false when no item can have
// it: an empty or oversize name, which DynamoDB would refuse as invalid
// rather than not find.
func (s *Store) itemKey(stream, id string) (map[string]types.AttributeValue, bool) {
	if stream == "" || id == "" || len(stream) > maxPartitionKey || len(id) > maxSortKey {
		return nil, false
	}
	return map[string]types.AttributeValue{attrStream: str(stream), attrID: str(id)}, true
}

// isConditionFailed reports whether err is a failed condition, and the
// item the server returned with it, if any.
func isConditionFailed(err error) (map[string]types.AttributeValue, bool) {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ccf.Item, true
	}
	return nil, false
}

// tooLarge tells DynamoDB's own refusal of an oversize item (a
// ValidationException) from other invalid requests.
func tooLarge(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ValidationException" &&
		strings.Contains(strings.ToLower(ae.ErrorMessage()), "item size")
}

// Get implements resource.Store with one strongly consistent GetItem.
func (s *Store) Get(ctx context.Context, stream, id string) (resource.Item, error) {
	key, ok := s.itemKey(stream, id)
	if !ok {
		return resource.Item{}, resource.ErrNotFound
	}
	out, err := s.c.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.t.Items,
		Key:            key,
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return resource.Item{}, fmt.Errorf("dynamo: get %s/%s: %w", stream, id, err)
	}
	if len(out.Item) == 0 {
		return resource.Item{}, resource.ErrNotFound
	}
	it, err := itemOf(out.Item)
	if err != nil {
		return resource.Item{}, fmt.Errorf("dynamo: get %s/%s: %w", stream, id, err)
	}
	return it, nil
}

// itemOf reads a stored item. An item without _version (written by
// another tool) has version 0.
func itemOf(m map[string]types.AttributeValue) (resource.Item, error) {
	var it resource.Item
	id, ok := m[attrID].(*types.AttributeValueMemberS)
	if !ok {
		return it, errors.New("item without a string id")
	}
	it.ID = id.Value
	if v, ok := m[attrVersion].(*types.AttributeValueMemberN); ok {
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			return it, fmt.Errorf("version %q: %w", v.Value, err)
		}
		it.Version = n
	}
	var err error
	if it.Data, err = appendObject(nil, m); err != nil {
		return it, err
	}
	return it, nil
}

// attrsOf builds the full item to write: the object's members, the key
// and the version. Data's id member, if present, must be the item's id.
func (s *Store) attrsOf(stream string, it resource.Item, version int64) (map[string]types.AttributeValue, error) {
	key, ok := s.itemKey(stream, it.ID)
	if !ok {
		return nil, fmt.Errorf("%w: stream and id must be 1 to %d and %d bytes", ErrInvalid, maxPartitionKey, maxSortKey)
	}
	attrs := make(map[string]types.AttributeValue, 8)
	var e encoder
	if err := e.encodeObject(it.Data, attrs); err != nil {
		return nil, err
	}
	if v, ok := attrs[attrID]; ok {
		if id, ok := v.(*types.AttributeValueMemberS); !ok || id.Value != it.ID {
			return nil, fmt.Errorf("%w: data's id member is not the item's id %q", ErrInvalid, it.ID)
		}
		e.size -= len(attrID) + len(it.ID)
	}
	attrs[attrStream], attrs[attrID] = key[attrStream], key[attrID]
	v := num(version)
	attrs[attrVersion] = v
	e.size += len(attrStream) + len(stream) + len(attrID) + len(it.ID) + len(attrVersion) + valueSize(v)
	if e.size > MaxItemSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, e.size)
	}
	return attrs, nil
}

// Create implements resource.Store with one PutItem that succeeds only if
// the id is new.
func (s *Store) Create(ctx context.Context, stream string, it resource.Item) error {
	attrs, err := s.attrsOf(stream, it, 1)
	if err != nil {
		return fmt.Errorf("dynamo: create %s/%s: %w", stream, it.ID, err)
	}
	_, err = s.c.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           &s.t.Items,
		Item:                attrs,
		ConditionExpression: aws.String("attribute_not_exists(#id)"),
		ExpressionAttributeNames: map[string]string{
			"#id": attrID,
		},
	})
	if _, ok := isConditionFailed(err); ok {
		return resource.ErrExists
	}
	if err != nil {
		if tooLarge(err) {
			err = fmt.Errorf("%w: %w", ErrTooLarge, err)
		}
		return fmt.Errorf("dynamo: create %s/%s: %w", stream, it.ID, err)
	}
	return nil
}

// Replace implements resource.Store with one PutItem conditioned on the
// version. A failed condition returns the stored item (ALL_OLD), which
// tells a conflict from a deleted item. A server that does not return it
// (real DynamoDB for an absent item, emulators always) costs one read.
func (s *Store) Replace(ctx context.Context, stream string, it resource.Item) (int64, error) {
	if _, ok := s.itemKey(stream, it.ID); !ok {
		return 0, resource.ErrNotFound
	}
	attrs, err := s.attrsOf(stream, it, it.Version+1)
	if err != nil {
		return 0, fmt.Errorf("dynamo: replace %s/%s: %w", stream, it.ID, err)
	}
	in := &dynamodb.PutItemInput{
		TableName:                           &s.t.Items,
		Item:                                attrs,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if it.Version == 0 {
		// An item another tool wrote without a version reads as version 0.
		in.ConditionExpression = aws.String("attribute_exists(#id) AND attribute_not_exists(#v)")
		in.ExpressionAttributeNames = map[string]string{"#v": attrVersion, "#id": attrID}
	} else {
		in.ConditionExpression = aws.String("#v = :v")
		in.ExpressionAttributeNames = map[string]string{"#v": attrVersion}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": num(it.Version)}
	}
	_, err = s.c.PutItem(ctx, in)
	if old, ok := isConditionFailed(err); ok {
		if len(old) > 0 {
			return 0, resource.ErrConflict
		}
		switch _, err := s.Get(ctx, stream, it.ID); {
		case err == nil:
			return 0, resource.ErrConflict
		case errors.Is(err, resource.ErrNotFound):
			return 0, resource.ErrNotFound
		default:
			return 0, fmt.Errorf("dynamo: replace %s/%s: condition failed, then: %w", stream, it.ID, err)
		}
	}
	if err != nil {
		if tooLarge(err) {
			err = fmt.Errorf("%w: %w", ErrTooLarge, err)
		}
		return 0, fmt.Errorf("dynamo: replace %s/%s: %w", stream, it.ID, err)
	}
	return it.Version + 1, nil
}

// Delete implements resource.Store with one DeleteItem that returns the
// old item and fails if there was none.
func (s *Store) Delete(ctx context.Context, stream, id string) (resource.Item, error) {
	key, ok := s.itemKey(stream, id)
	if !ok {
		return resource.Item{}, resource.ErrNotFound
	}
	out, err := s.c.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                &s.t.Items,
		Key:                      key,
		ConditionExpression:      aws.String("attribute_exists(#id)"),
		ExpressionAttributeNames: map[string]string{"#id": attrID},
		ReturnValues:             types.ReturnValueAllOld,
	})
	if _, ok := isConditionFailed(err); ok {
		return resource.Item{}, resource.ErrNotFound
	}
	if err != nil {
		return resource.Item{}, fmt.Errorf("dynamo: delete %s/%s: %w", stream, id, err)
	}
	it, err := itemOf(out.Attributes)
	if err != nil {
		return resource.Item{}, fmt.Errorf("dynamo: delete %s/%s: deleted, but: %w", stream, id, err)
	}
	return it, nil
}

// List implements resource.Store with one Query of the stream's
// partition in id order, asking for offset+limit items and dropping the
// first offset: DynamoDB has no offset. It sends another Query only when
// DynamoDB cut the page at 1 MB before enough items.
func (s *Store) List(ctx context.Context, stream string, offset, limit int) ([]resource.Item, error) {
	if limit <= 0 || offset < 0 || stream == "" || len(stream) > maxPartitionKey {
		return nil, nil
	}
	want := offset + limit
	if want < 0 || want > 1<<30 { // overflow, or more than any page
		want = 1 << 30
	}
	in := s.streamQuery(stream)
	var out []resource.Item
	seen := 0
	for {
		in.Limit = aws.Int32(int32(min(want-seen, 1<<30)))
		page, err := s.c.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("dynamo: list %s: %w", stream, err)
		}
		for _, m := range page.Items {
			seen++
			if seen <= offset {
				continue
			}
			it, err := itemOf(m)
			if err != nil {
				return nil, fmt.Errorf("dynamo: list %s: %w", stream, err)
			}
			out = append(out, it)
		}
		if seen >= want || len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

func (s *Store) streamQuery(stream string) *dynamodb.QueryInput {
	return &dynamodb.QueryInput{
		TableName:                 &s.t.Items,
		KeyConditionExpression:    aws.String("#s = :s"),
		ExpressionAttributeNames:  map[string]string{"#s": attrStream},
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": str(stream)},
		ConsistentRead:            aws.Bool(true),
	}
}

// Count implements resource.Store with a Query that returns only the
// count: one request per 1 MB of the stream's items.
func (s *Store) Count(ctx context.Context, stream string) (int, error) {
	if stream == "" || len(stream) > maxPartitionKey {
		return 0, nil
	}
	in := s.streamQuery(stream)
	in.Select = types.SelectCount
	n := 0
	for {
		page, err := s.c.Query(ctx, in)
		if err != nil {
			return 0, fmt.Errorf("dynamo: count %s: %w", stream, err)
		}
		n += int(page.Count)
		if len(page.LastEvaluatedKey) == 0 {
			return n, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}
