// Package dynamo is the DynamoDB backend: the items store, subscriptions
// and connections of docs/design.md section 3, each operation one request
// (or one per 1 MB page, per 25 deletes, or per topic of a subscriber
// lookup; a subscribe is two, its write and a read of its connection) to
// one of three tables. RATIONALE, "Why is a scope a partition of its
// own?", has the key layout and the request budget.
//
//	s := dynamo.New(dynamo.Config{Client: dynamodb.NewFromConfig(cfg), Tables: tables})
//	err := s.Create(ctx, store.Part{Stream: "questions"}, store.Item{ID: id, Data: obj})
package dynamo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/wsbind/wsbind/internal/core/store"
)

// Client is the part of *dynamodb.Client the store calls. There is no
// Scan in it, on purpose.
type Client interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

var _ Client = (*dynamodb.Client)(nil)

// Tables names the five tables.
type Tables struct {
	Items         string
	Connections   string
	Subscriptions string
	// Idempotency holds the idempotency keys of writes and their replies;
	// "" means writes that carry a key fail.
	Idempotency string
	// History holds the changes resumed subscriptions replay; "" means
	// the fan-out cannot record them and a resume fails.
	History string
}

// Config configures a Store. Client and Tables are required.
type Config struct {
	Client Client
	Tables Tables
	// Now is the clock that sets and checks expiry. nil means time.Now.
	Now func() time.Time
	// Retention is how long the history keeps a change (its time to
	// live). 0 means DefaultRetention.
	Retention time.Duration
}

// Attribute names of the tables (docs/design.md section 3; RATIONALE: "Why are
// the items table's own attributes named `_stream` and `_version`?" and
// "Why is a scope a partition of its own?").
const (
	attrStream  = "_stream"  // items: partition key (S): the stream, or stream#scope
	attrBinding = "_binding" // items: the stream of a scoped item (S); by_binding's partition key
	attrID      = "id"       // items: sort key (S), also the object's id
	attrVersion = "_version"

	attrConnID      = "conn_id"      // connections: partition key; subscriptions: by_conn's partition key
	attrTopic       = "topic"        // subscriptions: partition key
	attrSub         = "sub"          // subscriptions: sort key: conn_id, or conn_id#filter
	attrFilter      = "filter"       // subscriptions: the filter (S), absent for none
	attrUserID      = "user_id"      // absent for anonymous connections
	attrRoles       = "roles"        // L of S, absent for none
	attrClaims      = "claims"       // M of S
	attrConnectedAt = "connected_at" // N, Unix ms
	attrTTL         = "ttl"          // N, Unix seconds

	// AttrTTL is the time-to-live attribute of the connections,
	// subscriptions and idempotency tables (not of items), which the
	// deployment's template enables.
	AttrTTL = attrTTL

	// IndexByConn is the subscriptions table's index on conn_id.
	IndexByConn = "by_conn"
	// IndexByBinding is the items table's sparse index of scoped items
	// by stream (_binding), which serves a read of every scope.
	IndexByBinding = "by_binding"
)

// scopeSep separates a scoped item's stream from its scope in _stream.
// Stream names hold only letters, digits, '_', '-' and '.', so the first
// '#' is always the separator, whatever the scope holds.
const scopeSep = "#"

// Lifetime is how long a connection record lives: API Gateway's 2 hour
// connection limit plus a margin for clocks and a late $disconnect.
const Lifetime = 2*time.Hour + 10*time.Minute

// Store is the DynamoDB backend. It is safe for concurrent use.
type Store struct {
	c         Client
	t         Tables
	now       func() time.Time
	retention time.Duration
}

var _ store.Store = (*Store)(nil)

// New returns a store. The config is copied.
func New(cfg Config) *Store {
	s := &Store{c: cfg.Client, t: cfg.Tables, now: cfg.Now, retention: cfg.Retention}
	if s.now == nil {
		s.now = time.Now
	}
	if s.retention <= 0 {
		s.retention = DefaultRetention
	}
	return s
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// partition is the items table's partition of p: the stream, or for a
// scope stream#scope.
func partition(p store.Part) string {
	if p.Scope == "" {
		return p.Stream
	}
	return p.Stream + scopeSep + p.Scope
}

// itemKey returns the key of an item in p (which must not be All), or ok
// false when no item can have it: an empty or oversize name, which
// DynamoDB would refuse as invalid rather than not find, or a stream
// holding the scope separator.
func (s *Store) itemKey(p store.Part, id string) (map[string]types.AttributeValue, bool) {
	part := partition(p)
	if !validStream(p.Stream) || id == "" || len(part) > maxPartitionKey || len(id) > maxSortKey {
		return nil, false
	}
	return map[string]types.AttributeValue{attrStream: str(part), attrID: str(id)}, true
}

// validStream reports whether stream can name a partition: not empty,
// not too long, no scope separator.
func validStream(stream string) bool {
	return stream != "" && len(stream) <= maxPartitionKey && !strings.Contains(stream, scopeSep)
}

// errWriteAll refuses a write whose Part is every scope.
func errWriteAll() error {
	return fmt.Errorf("%w: a write names one scope, not every scope", ErrInvalid)
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

// where names p, and the item id unless it is "", in error messages:
// "stream/id", "stream[scope]/id", "stream[all]/id".
func where(p store.Part, id string) string {
	w := p.Stream
	switch {
	case p.All:
		w += "[all]"
	case p.Scope != "":
		w += "[" + p.Scope + "]"
	}
	if id != "" {
		w += "/" + id
	}
	return w
}

// Get implements store.Store with one strongly consistent GetItem of
// p's partition; with p.All, one Query of the by_binding index for the
// id, which is eventually consistent (DynamoDB has no other kind on a
// global index). Should several scopes hold the id, the first scope in
// byte order wins.
func (s *Store) Get(ctx context.Context, p store.Part, id string) (store.Item, error) {
	if p.All {
		return s.getAll(ctx, p, id)
	}
	key, ok := s.itemKey(p, id)
	if !ok {
		return store.Item{}, store.ErrNotFound
	}
	out, err := s.c.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.t.Items,
		Key:            key,
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return store.Item{}, fmt.Errorf("dynamo: get %s: %w", where(p, id), err)
	}
	if len(out.Item) == 0 {
		return store.Item{}, store.ErrNotFound
	}
	it, err := itemOf(out.Item)
	if err != nil {
		return store.Item{}, fmt.Errorf("dynamo: get %s: %w", where(p, id), err)
	}
	return it, nil
}

// getAll is Get of every scope.
func (s *Store) getAll(ctx context.Context, p store.Part, id string) (store.Item, error) {
	if !validStream(p.Stream) || id == "" || len(id) > maxSortKey {
		return store.Item{}, store.ErrNotFound
	}
	in := s.bindingQuery(p.Stream)
	in.KeyConditionExpression = aws.String("#b = :b AND #id = :id")
	in.ExpressionAttributeNames["#id"] = attrID
	in.ExpressionAttributeValues[":id"] = str(id)
	var found map[string]types.AttributeValue
	for {
		page, err := s.c.Query(ctx, in)
		if err != nil {
			return store.Item{}, fmt.Errorf("dynamo: get %s: %w", where(p, id), err)
		}
		for _, m := range page.Items {
			if found == nil || scopeOf(m) < scopeOf(found) {
				found = m
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	if found == nil {
		return store.Item{}, store.ErrNotFound
	}
	it, err := itemOf(found)
	if err != nil {
		return store.Item{}, fmt.Errorf("dynamo: get %s: %w", where(p, id), err)
	}
	return it, nil
}

// scopeOf is a stored item's scope: what follows the first '#' of its
// _stream, "" for an unscoped item.
func scopeOf(m map[string]types.AttributeValue) string {
	if v, ok := m[attrStream].(*types.AttributeValueMemberS); ok {
		if _, scope, ok := strings.Cut(v.Value, scopeSep); ok {
			return scope
		}
	}
	return ""
}

// itemOf reads a stored item. An item without _version (written by
// another tool) has version 0.
func itemOf(m map[string]types.AttributeValue) (store.Item, error) {
	var it store.Item
	id, ok := m[attrID].(*types.AttributeValueMemberS)
	if !ok {
		return it, errors.New("item without a string id")
	}
	it.ID = id.Value
	it.Scope = scopeOf(m)
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

// attrsOf builds the full item to write in p: the object's members, the
// key, the version, and for a scoped item its stream in _binding. Data's
// id member, if present, must be the item's id.
func (s *Store) attrsOf(p store.Part, it store.Item, version int64) (map[string]types.AttributeValue, error) {
	key, ok := s.itemKey(p, it.ID)
	if !ok {
		return nil, fmt.Errorf("%w: stream#scope and id must be 1 to %d and %d bytes, the stream without '#'", ErrInvalid, maxPartitionKey, maxSortKey)
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
	e.size += len(attrStream) + len(partition(p)) + len(attrID) + len(it.ID) + len(attrVersion) + valueSize(v)
	if p.Scope != "" {
		attrs[attrBinding] = str(p.Stream)
		e.size += len(attrBinding) + len(p.Stream)
	}
	if e.size > MaxItemSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, e.size)
	}
	return attrs, nil
}

// Create implements store.Store with one PutItem that succeeds only if
// the id is new in p.
func (s *Store) Create(ctx context.Context, p store.Part, it store.Item) error {
	if p.All {
		return fmt.Errorf("dynamo: create %s: %w", where(p, it.ID), errWriteAll())
	}
	attrs, err := s.attrsOf(p, it, 1)
	if err != nil {
		return fmt.Errorf("dynamo: create %s: %w", where(p, it.ID), err)
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
		return store.ErrExists
	}
	if err != nil {
		if tooLarge(err) {
			err = fmt.Errorf("%w: %w", ErrTooLarge, err)
		}
		return fmt.Errorf("dynamo: create %s: %w", where(p, it.ID), err)
	}
	return nil
}

// versionCondition is the condition "the stored version is version", its
// names and values; version 0 is an item another tool wrote without one.
func versionCondition(version int64) (cond string, names map[string]string, values map[string]types.AttributeValue) {
	if version == 0 {
		return "attribute_exists(#id) AND attribute_not_exists(#v)", map[string]string{"#v": attrVersion, "#id": attrID}, nil
	}
	return "#v = :v", map[string]string{"#v": attrVersion}, map[string]types.AttributeValue{":v": num(version)}
}

// conflictOrGone tells why op's versioned write of id in p failed its
// condition: ErrConflict or ErrNotFound. old is the stored item the
// server returned with the failure (ALL_OLD); a server that does not
// return it (real DynamoDB for an absent item, emulators always) costs
// one strongly consistent read.
func (s *Store) conflictOrGone(ctx context.Context, op string, p store.Part, id string, old map[string]types.AttributeValue) error {
	if len(old) > 0 {
		return store.ErrConflict
	}
	switch _, err := s.Get(ctx, p, id); {
	case err == nil:
		return store.ErrConflict
	case errors.Is(err, store.ErrNotFound):
		return store.ErrNotFound
	default:
		return fmt.Errorf("dynamo: %s %s: condition failed, then: %w", op, where(p, id), err)
	}
}

// Replace implements store.Store with one PutItem conditioned on the
// version. A failed condition returns the stored item (ALL_OLD), which
// tells a conflict from a deleted item; without it, one read tells.
func (s *Store) Replace(ctx context.Context, p store.Part, it store.Item) (int64, error) {
	if p.All {
		return 0, fmt.Errorf("dynamo: replace %s: %w", where(p, it.ID), errWriteAll())
	}
	if _, ok := s.itemKey(p, it.ID); !ok {
		return 0, store.ErrNotFound
	}
	attrs, err := s.attrsOf(p, it, it.Version+1)
	if err != nil {
		return 0, fmt.Errorf("dynamo: replace %s: %w", where(p, it.ID), err)
	}
	cond, names, values := versionCondition(it.Version)
	_, err = s.c.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           &s.t.Items,
		Item:                                attrs,
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, ok := isConditionFailed(err); ok {
		return 0, s.conflictOrGone(ctx, "replace", p, it.ID, old)
	}
	if err != nil {
		if tooLarge(err) {
			err = fmt.Errorf("%w: %w", ErrTooLarge, err)
		}
		return 0, fmt.Errorf("dynamo: replace %s: %w", where(p, it.ID), err)
	}
	return it.Version + 1, nil
}

// Delete implements store.Store with one DeleteItem that returns the
// old item and fails if there was none, or, given a version, if the
// stored one is another (then as Replace tells a conflict from a missing
// item).
func (s *Store) Delete(ctx context.Context, p store.Part, id string, version int64) (store.Item, error) {
	if p.All {
		return store.Item{}, fmt.Errorf("dynamo: delete %s: %w", where(p, id), errWriteAll())
	}
	key, ok := s.itemKey(p, id)
	if !ok {
		return store.Item{}, store.ErrNotFound
	}
	in := &dynamodb.DeleteItemInput{
		TableName:                &s.t.Items,
		Key:                      key,
		ConditionExpression:      aws.String("attribute_exists(#id)"),
		ExpressionAttributeNames: map[string]string{"#id": attrID},
		ReturnValues:             types.ReturnValueAllOld,
	}
	if version != store.AnyVersion {
		cond, names, values := versionCondition(version)
		in.ConditionExpression, in.ExpressionAttributeNames, in.ExpressionAttributeValues = aws.String(cond), names, values
		in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	}
	out, err := s.c.DeleteItem(ctx, in)
	if old, ok := isConditionFailed(err); ok {
		if version == store.AnyVersion {
			return store.Item{}, store.ErrNotFound
		}
		return store.Item{}, s.conflictOrGone(ctx, "delete", p, id, old)
	}
	if err != nil {
		return store.Item{}, fmt.Errorf("dynamo: delete %s: %w", where(p, id), err)
	}
	it, err := itemOf(out.Attributes)
	if err != nil {
		return store.Item{}, fmt.Errorf("dynamo: delete %s: deleted, but: %w", where(p, id), err)
	}
	return it, nil
}

// partQuery returns the Query of p's items in id order: one strongly
// consistent Query of p's partition of the table, or for p.All one of
// the by_binding index (eventually consistent). ok is false for a Part
// that can hold no item.
func (s *Store) partQuery(p store.Part) (in *dynamodb.QueryInput, ok bool) {
	if p.All {
		if !validStream(p.Stream) {
			return nil, false
		}
		return s.bindingQuery(p.Stream), true
	}
	part := partition(p)
	if !validStream(p.Stream) || len(part) > maxPartitionKey {
		return nil, false
	}
	return &dynamodb.QueryInput{
		TableName:                 &s.t.Items,
		KeyConditionExpression:    aws.String("#s = :s"),
		ExpressionAttributeNames:  map[string]string{"#s": attrStream},
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": str(part)},
		ConsistentRead:            aws.Bool(true),
	}, true
}

// bindingQuery is the Query of the by_binding index's partition of
// stream: every scoped item of the stream. It sets no ConsistentRead,
// which DynamoDB refuses on a global index.
func (s *Store) bindingQuery(stream string) *dynamodb.QueryInput {
	return &dynamodb.QueryInput{
		TableName:                 &s.t.Items,
		IndexName:                 aws.String(IndexByBinding),
		KeyConditionExpression:    aws.String("#b = :b"),
		ExpressionAttributeNames:  map[string]string{"#b": attrBinding},
		ExpressionAttributeValues: map[string]types.AttributeValue{":b": str(stream)},
	}
}

// List implements store.Store with one Query of p's partition in id
// order (for p.All, of the by_binding index). Given after, the key
// condition starts the Query past it (id > after), so a keyset page
// reads only what it returns; an offset asks for offset+limit items and
// drops the first offset: DynamoDB has no offset. For p.All it reads one
// item more, to see whether the page ends inside a run of one id in
// several scopes, and then reads on to the run's end; it orders each run
// by scope, since DynamoDB does not say how a global index orders equal
// keys. It sends another Query only when DynamoDB cut the page at 1 MB
// before enough items.
func (s *Store) List(ctx context.Context, p store.Part, after string, offset, limit int) ([]store.Item, error) {
	if limit <= 0 || offset < 0 {
		return nil, nil
	}
	if len(after) > maxSortKey {
		return nil, fmt.Errorf("dynamo: list %s: %w: after of %d bytes, past the %d of a key", where(p, ""), ErrInvalid, len(after), maxSortKey)
	}
	in, ok := s.partQuery(p)
	if !ok {
		return nil, nil
	}
	if after != "" {
		hash := "#s = :s"
		if p.All {
			hash = "#b = :b"
		}
		in.KeyConditionExpression = aws.String(hash + " AND #id > :after")
		in.ExpressionAttributeNames["#id"] = attrID
		in.ExpressionAttributeValues[":after"] = str(after)
	}
	want := offset + limit
	if p.All {
		want++ // the item after the page: does the page end inside a run?
	}
	if want < 0 || want > 1<<30 { // overflow, or more than any page
		want = 1 << 30
	}
	var out []store.Item
	seen := 0
	for {
		ask := want - seen
		if ask <= 0 { // reading on to the end of the last id's run
			ask = runBatch
		}
		in.Limit = aws.Int32(int32(min(ask, 1<<30)))
		page, err := s.c.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("dynamo: list %s: %w", where(p, ""), err)
		}
		for _, m := range page.Items {
			seen++
			if seen <= offset {
				continue
			}
			it, err := itemOf(m)
			if err != nil {
				return nil, fmt.Errorf("dynamo: list %s: %w", where(p, ""), err)
			}
			out = append(out, it)
		}
		if len(page.LastEvaluatedKey) == 0 || (!p.All && seen >= want) ||
			(p.All && len(out) > limit && out[len(out)-1].ID != out[limit-1].ID) {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	if !p.All {
		return out, nil
	}
	if len(out) > limit {
		n := limit
		for n < len(out) && out[n].ID == out[n-1].ID {
			n++
		}
		out = out[:n]
	}
	slices.SortStableFunc(out, func(a, b store.Item) int {
		return cmp.Or(strings.Compare(a.ID, b.ID), strings.Compare(a.Scope, b.Scope))
	})
	return out, nil
}

// runBatch is how many items List asks for at a time when it reads on to
// the end of a run of one id in several scopes.
const runBatch = 10

// Count implements store.Store with a Query of p (as List's) that
// returns only the count: one request per 1 MB of p's items.
func (s *Store) Count(ctx context.Context, p store.Part) (int, error) {
	in, ok := s.partQuery(p)
	if !ok {
		return 0, nil
	}
	in.Select = types.SelectCount
	n := 0
	for {
		page, err := s.c.Query(ctx, in)
		if err != nil {
			return 0, fmt.Errorf("dynamo: count %s: %w", where(p, ""), err)
		}
		n += int(page.Count)
		if len(page.LastEvaluatedKey) == 0 {
			return n, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}
