// Package store is the contract between the bindings and the database:
// the Store every backend implements (memory/ for tests and the memory
// setting, internal/aws/dynamo on AWS),
// what it stores, and the subscriptions fan-out reads. The bindings
// consume it through resource's unexported serving code; binding authors
// never see it.
package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/wsbind/wsbind/internal/core/identity"
)

// Item is one stored object: its id, the scope it lives in, the version
// that every write increments, and its stored form, a JSON object with one
// member per field (write-only fields included, id included).
type Item struct {
	ID string
	// Scope is the scope key of a scoped binding's object (its owner, say);
	// "" for an unscoped binding. It is fixed when the object is created.
	Scope   string
	Version int64
	Data    []byte
}

// Part names the objects a call reaches: one stream's objects in one
// scope, or in every scope.
type Part struct {
	Stream string
	// Scope is the scope key; "" for an unscoped binding.
	Scope string
	// All reaches every scope of a scoped stream (an admin's view). Reads
	// only; the items it returns carry their Scope, which writes then name.
	All bool
}

// AnyVersion makes Delete unconditional.
const AnyVersion = -1

// Subscription asks for the pushes of one topic on one connection. User is
// the connection's user, recorded so that fan-out checks scope and object
// permissions without looking the connection up. Filter is the canonical
// JSON of the subscription's field filter, "" for none; one connection may
// hold several subscriptions of a topic that differ in their filters.
type Subscription struct {
	Topic  string
	ConnID string
	Filter string
	User   identity.User
}

// Conn is a connection's record: who is connected, and since when. The
// connect function records it on $connect and drops it on $disconnect;
// a subscription is recorded only for a connection that has one.
type Conn struct {
	ConnID string
	User   identity.User
	// At is when the connection was made, in Unix milliseconds; 0 means
	// now.
	At int64
}

// Connections records who is connected.
type Connections interface {
	// PutConn records a connection and its user.
	PutConn(ctx context.Context, c Conn) error
	// DropConn forgets a connection and every subscription it made.
	DropConn(ctx context.Context, connID string) error
}

// Change kinds: what a committed write did, as pushes name them.
const (
	KindCreate = "create"
	KindUpdate = "update"
	KindDelete = "delete"
)

// Change is one committed write, as the database's change stream reports
// it. Stream is the binding's stream (a scoped item's scope is not part
// of it); Kind is KindCreate, KindUpdate or KindDelete; Old is the stored
// image before (nil on create), New the one after (nil on delete).
// Version is the object's version after the change: the stored version
// for create and update, the one after the last for delete; 0 when the
// images carry none (an item written by another tool).
type Change struct {
	Stream, PK, Kind string
	Old, New         []byte
	Version          int64
	// Scope is the scope key of a scoped binding's object, "" otherwise.
	Scope string
	// At is the change's position in the history: when the fan-out
	// took it, in Unix milliseconds; 0 before. Its cursor is Cursor(At).
	At int64
}

// History is the change history that resume replays (RATIONALE: "Why is
// the history written by the fan-out, and a cursor a time?"): every
// change of the items table, kept by the partition it was made in, for
// the retention.
type History interface {
	// Record stores the changes, each at its At. One request per 25
	// changes on DynamoDB.
	Record(ctx context.Context, changes []Change) error
	// Since returns the changes of p from the position from (Unix ms)
	// on, oldest first, at most limit of them: p.All reads every scope.
	// One query per 1 MB on DynamoDB.
	Since(ctx context.Context, p Part, from int64, limit int) ([]Change, error)
}

// Cursor is the opaque text of a history position (Unix ms), as clients
// get it in pushes and list replies and give it back as since.
func Cursor(at int64) string {
	return "1." + strconv.FormatInt(at, 10)
}

// ParseCursor reads a cursor; ok is false for any text Cursor does not
// write.
func ParseCursor(s string) (at int64, ok bool) {
	rest, found := strings.CutPrefix(s, "1.")
	if !found || rest == "" || len(rest) > 15 {
		return 0, false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	at, err := strconv.ParseInt(rest, 10, 64)
	return at, err == nil && at > 0
}

// Store errors. Implementations return them (possibly wrapped) so bindings
// can tell the expected outcomes from failures.
var (
	ErrNotFound = errors.New("item not found")
	ErrExists   = errors.New("item exists")
	ErrConflict = errors.New("item version changed")
)

// Store is what a binding runs against. Every method is one request to the
// database, except where it says otherwise (on DynamoDB, Get of every scope
// and List and Count past 1 MB; Subscribe, which reads its connection
// back).
type Store interface {
	// Get returns the item, or ErrNotFound. With p.All it finds the item in
	// whichever scope holds it (eventually consistent on DynamoDB).
	Get(ctx context.Context, p Part, id string) (Item, error)
	// Create stores a new item in p (item.Scope is p.Scope) with version 1,
	// or returns ErrExists.
	Create(ctx context.Context, p Part, item Item) error
	// Replace stores item.Data with version item.Version+1 only when the
	// stored version is item.Version: ErrConflict when it is not, ErrNotFound
	// when the item is gone. It returns the new version.
	Replace(ctx context.Context, p Part, item Item) (int64, error)
	// Delete removes the item and returns what was stored, or ErrNotFound;
	// with a version other than AnyVersion, only when the stored version is
	// that one (ErrConflict otherwise).
	Delete(ctx context.Context, p Part, id string, version int64) (Item, error)
	// List returns at most limit items of p in id order (for p.All, id
	// then scope) whose ids sort after after (in byte order; "" is before
	// every id), skipping the first offset of them. A keyset page, after
	// the last id of the page before, starts where that page ended
	// whatever was deleted or created before it, and costs what the page
	// holds; an offset costs the items it skips (on DynamoDB, reading
	// them). With p.All a page never ends inside a run of one id held by
	// several scopes: it runs on to the run's end, past limit if need
	// be, so that a keyset page after that id misses none of them.
	// Backends may refuse an after longer than MaxPK.
	List(ctx context.Context, p Part, after string, offset, limit int) ([]Item, error)
	// Count returns how many items p holds.
	Count(ctx context.Context, p Part) (int, error)
	// Subscribe records a subscription. Subscribing twice is not an error,
	// and neither is subscribing a connection that is gone: nothing is
	// recorded then, so that no subscription outlives its connection.
	Subscribe(ctx context.Context, sub Subscription) error
	// Unsubscribe removes the subscription of sub's topic, connection and
	// filter. Removing one that does not exist is not an error.
	Unsubscribe(ctx context.Context, sub Subscription) error
	// Claim records an idempotency key as taken by c (its Stream, Action,
	// Lease and Expires; Reply nil), when the key is free: never used,
	// expired, or claimed by a request whose lease ended with no reply. It
	// returns Fresh when it did; otherwise the key's record as stored,
	// changing nothing. One conditional write on DynamoDB.
	Claim(ctx context.Context, key string, c Claim, now time.Time) (Claim, error)
	// Settle stores the reply of a key this request claimed; a nil reply
	// frees the key instead (the write did not happen). One write.
	Settle(ctx context.Context, key string, reply []byte) error
	// Since is History's: the changes a resumed subscription replays.
	Since(ctx context.Context, p Part, from int64, limit int) ([]Change, error)
}

// Claim is an idempotency key's record: the request that took it, and
// its reply once there is one.
type Claim struct {
	// Fresh reports that Claim took the key for this request.
	Fresh bool
	// Stream and Action are what the key was used for.
	Stream, Action string
	// Lease is when a claim with no reply may be taken over: its request
	// must have died. Expires is when the key is free again.
	Lease, Expires time.Time
	// Reply is the stored reply, nil while the first request runs.
	Reply []byte
}

// Topic names the subscription topic for changes of one kind on a stream:
// "stream#action" for every object, "stream#action#pk" for one. Stream and
// action never contain '#', so no pk can collide with the all-objects topic.
func Topic(stream, action, pk string) string {
	if pk == "" {
		return stream + "#" + action
	}
	return stream + "#" + action + "#" + pk
}

// MaxPK is the longest pk any action takes, in bytes: DynamoDB's sort key
// limit, which a subscription's topic must also fit.
const MaxPK = 1024

// Subscribers finds who subscribed to topics: the fan-out's view of the
// subscriptions. It is one query per topic, run concurrently where the
// backend can; each subscription carries its Topic.
type Subscribers interface {
	Subscribers(ctx context.Context, topics []string) ([]Subscription, error)
}

// ErrCorrupt marks a stored item that its binding's serializer cannot read.
var ErrCorrupt = errors.New("stored item does not match the binding")
